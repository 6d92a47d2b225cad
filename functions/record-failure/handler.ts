import { recordFailureStep } from '../../lib/orchestration/record-failure-step.ts';
import type { CaughtError } from '../../lib/orchestration/step-types.ts';
import { stepHandler } from '../shared/step-handler.ts';
import { taskStore } from '../shared/task-store.ts';

/** Carries no spec: a failure is recorded even when the spec itself was the problem. */
export const handler = stepHandler('RecordFailure', (event: { taskId?: string; error?: CaughtError }) =>
  recordFailureStep(event, { store: taskStore() }),
);

import { cleanupStep } from '../../lib/orchestration/cleanup-step.ts';
import type { TaskStepInput } from '../../lib/orchestration/step-types.ts';
import { stepHandler } from '../shared/step-handler.ts';
import { taskStore } from '../shared/task-store.ts';

export const handler = stepHandler('Cleanup', (event: TaskStepInput, context) =>
  cleanupStep(event, { store: taskStore(), secrets: context.secretValues }),
);

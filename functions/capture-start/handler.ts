import { captureStartStep } from '../../lib/orchestration/capture-start-step.ts';
import type { TaskStepInput } from '../../lib/orchestration/step-types.ts';
import { stepHandler } from '../shared/step-handler.ts';
import { taskStore } from '../shared/task-store.ts';

export const handler = stepHandler('CaptureStart', (event: TaskStepInput, context) =>
  captureStartStep(event, { store: taskStore(), secrets: context.secretValues }),
);

import { precheckStep } from '../../lib/orchestration/precheck-step.ts';
import type { TaskStepInput } from '../../lib/orchestration/step-types.ts';
import { logger } from '../shared/powertools.ts';
import { stepHandler } from '../shared/step-handler.ts';
import { taskStore } from '../shared/task-store.ts';

export const handler = stepHandler('Precheck', async (event: TaskStepInput, context) => {
  const result = await precheckStep(event, { store: taskStore(), secrets: context.secretValues });
  // The whole report stays in the log; the execution carries the verdict and its text.
  logger.info('precheck', { taskId: event.taskId, status: result.status, items: result.items });
  return result;
});

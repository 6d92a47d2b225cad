import type { TaskStepInput } from '../../lib/orchestration/step-types.ts';
import { verifyStep } from '../../lib/orchestration/verify-step.ts';
import { stepHandler } from '../shared/step-handler.ts';
import { addInconsistentKeys, publishTaskMetrics } from '../shared/task-metrics.ts';
import { taskStore } from '../shared/task-store.ts';

export const handler = stepHandler('Verify', (event: TaskStepInput, context) =>
  verifyStep(event, {
    store: taskStore(),
    secrets: context.secretValues,
    // Published before a failing verification throws, so the inconsistency alarm sees it either way.
    onReport: (report) =>
      publishTaskMetrics(event.taskId, (m) => addInconsistentKeys(m, report.keysDiffering)),
  }),
);

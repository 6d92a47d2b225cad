import { replicateStep } from '../../lib/orchestration/replicate-step.ts';
import type { TaskStepInput } from '../../lib/orchestration/step-types.ts';
import { stepHandler } from '../shared/step-handler.ts';
import { addInconsistentKeys, addIncrementalMetrics, publishTaskMetrics } from '../shared/task-metrics.ts';
import { taskStore } from '../shared/task-store.ts';

/** Time kept back from the Lambda timeout: the batches in flight are confirmed and the marker set. */
export const SAFETY_MARGIN_MS = 30_000;

/**
 * One window of incremental sync in Lambda mode: replicates until the deadline, then returns; the next
 * window resumes from the destination's marker.
 */
export const handler = stepHandler(
  'IncrementalWindow',
  async (
    event: TaskStepInput & { window?: { iteration?: number } },
    context,
  ): Promise<{ stopped: boolean; iteration: number }> => {
    const outcome = await replicateStep(event, {
      store: taskStore(),
      secrets: context.secretValues,
      deadline: Date.now() + Math.max(0, context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS),
      onSampledVerification: (n) => publishTaskMetrics(event.taskId, (m) => addInconsistentKeys(m, n)),
    });
    publishTaskMetrics(event.taskId, (m) => addIncrementalMetrics(m, outcome.progress));
    return { iteration: (event.window?.iteration ?? 0) + 1, stopped: outcome.ended !== 'deadline' };
  },
);

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { TASK_METRIC } from '../../lib/metrics/task-metrics.ts';
import { copyChunkStep } from '../../lib/orchestration/copy-chunk-step.ts';
import type { CopyChunkInput } from '../../lib/orchestration/step-types.ts';
import { stepHandler } from '../shared/step-handler.ts';
import { publishTaskMetrics } from '../shared/task-metrics.ts';
import { taskStore } from '../shared/task-store.ts';

/**
 * Time kept back from the Lambda timeout: the chunks in flight when the deadline passes are still
 * applied and the last checkpoint written after it (a chunk is at most a few seconds of work).
 */
export const SAFETY_MARGIN_MS = 60_000;

export const handler = stepHandler('CopyChunk', async (event: CopyChunkInput, context) => {
  const result = await copyChunkStep(event, {
    store: taskStore(),
    secrets: context.secretValues,
    deadline: Date.now() + Math.max(0, context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS),
  });
  publishTaskMetrics(event.taskId, (m) =>
    m.addMetric(TASK_METRIC.keysCopied, MetricUnit.Count, result.keysThisRun),
  );
  return result;
});

import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { IncrementalProgress } from '../../lib/incremental/incremental-types.ts';
import { METRICS_NAMESPACE, TASK_METRIC } from '../../lib/metrics/task-metrics.ts';
import type { NotificationProgress } from '../../lib/notifications/notification-sync.ts';

/**
 * A metrics buffer with the task dimensions (service, task; lib/metrics/task-metrics.ts): the stack's
 * dashboard selects a task by them, whether a Lambda or the replicator emitted the figure. The step
 * handlers' own buffer (powertools.ts) carries the step dimension instead, for StepSucceeded/StepFailed.
 */
export function taskMetrics(taskId: string, serviceName?: string): Metrics {
  return new Metrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE,
    serviceName: serviceName ?? process.env.POWERTOOLS_SERVICE_NAME ?? 'redis-dts',
    defaultDimensions: { task: taskId },
  });
}

/** Adds figures to a fresh task buffer and publishes them at once (one EMF line per call). */
export function publishTaskMetrics(taskId: string, add: (m: Metrics) => void): void {
  const m = taskMetrics(taskId);
  add(m);
  m.publishStoredMetrics();
}

/** The incremental sync's figures: what the lag alarm and the dashboard's incremental row watch. */
export function addIncrementalMetrics(m: Metrics, p: IncrementalProgress): void {
  if (p.lagMs !== undefined) m.addMetric(TASK_METRIC.lagMs, MetricUnit.Milliseconds, p.lagMs);
  if (p.bytesBehind !== undefined) m.addMetric(TASK_METRIC.bytesBehind, MetricUnit.Bytes, p.bytesBehind);
  m.addMetric(TASK_METRIC.opsPerSecond, MetricUnit.CountPerSecond, p.opsPerSecond);
  m.addMetric(TASK_METRIC.commandsApplied, MetricUnit.Count, p.commandsApplied);
  m.addMetric(TASK_METRIC.keysRecopied, MetricUnit.Count, p.keysRecopied);
  // The notifications reader's figures: at-most-once events make its gaps what an operator watches.
  if (isNotificationProgress(p)) {
    m.addMetric(TASK_METRIC.eventGaps, MetricUnit.Count, p.gaps);
    m.addMetric(TASK_METRIC.repairRounds, MetricUnit.Count, p.repairRounds);
    m.addMetric(TASK_METRIC.dirtyKeys, MetricUnit.Count, p.dirtyKeys);
  }
}

function isNotificationProgress(p: IncrementalProgress): p is NotificationProgress {
  return (p as Partial<NotificationProgress>).reader === 'notifications';
}

export function addInconsistentKeys(m: Metrics, inconsistentKeys: number): void {
  m.addMetric(TASK_METRIC.inconsistentKeys, MetricUnit.Count, inconsistentKeys);
}

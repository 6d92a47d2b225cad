import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { IncrementalProgress } from '../../lib/incremental/incremental-sync.ts';

/** The incremental sync's figures as CloudWatch metrics (EMF): what an alarm on a migration watches. */
export function addIncrementalMetrics(metrics: Metrics, p: IncrementalProgress): void {
  if (p.lagMs !== undefined) metrics.addMetric('SyncLagMs', MetricUnit.Milliseconds, p.lagMs);
  if (p.bytesBehind !== undefined) metrics.addMetric('BytesBehind', MetricUnit.Bytes, p.bytesBehind);
  metrics.addMetric('OpsPerSecond', MetricUnit.CountPerSecond, p.opsPerSecond);
  metrics.addMetric('CommandsApplied', MetricUnit.Count, p.commandsApplied);
  metrics.addMetric('KeysRecopied', MetricUnit.Count, p.keysRecopied);
}

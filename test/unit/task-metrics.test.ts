import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  addInconsistentKeys,
  addIncrementalMetrics,
  publishTaskMetrics,
} from '../../functions/shared/task-metrics.ts';
import { METRICS_NAMESPACE, TASK_DIMENSIONS, TASK_METRIC } from '../../lib/metrics/task-metrics.ts';
import type { NotificationProgress } from '../../lib/notifications/notification-sync.ts';

/** The EMF records written to stdout while `fn` runs. */
function emfOf(fn: () => void): Record<string, unknown>[] {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    fn();
  } finally {
    spy.mockRestore();
  }
  return lines
    .join('')
    .split('\n')
    .filter((l) => l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('task metrics (what the stack dashboard and alarms read)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('carry exactly the service and task dimensions, in our namespace, whatever the step', () => {
    const [record] = emfOf(() =>
      publishTaskMetrics('task-1', (m) => {
        addInconsistentKeys(m, 3);
        m.addMetric(TASK_METRIC.keysCopied, MetricUnit.Count, 1000);
      }),
    );
    expect(record).toMatchObject({ task: 'task-1', InconsistentKeys: 3, KeysCopied: 1000 });
    const aws = record!._aws as { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] };
    expect(aws.CloudWatchMetrics).toEqual([
      expect.objectContaining({ Namespace: METRICS_NAMESPACE, Dimensions: [[...TASK_DIMENSIONS]] }),
    ]);
  });

  it('turn the incremental progress into lag, bytes behind, rates and counts', () => {
    const [record] = emfOf(() =>
      publishTaskMetrics('task-2', (m) =>
        addIncrementalMetrics(m, {
          phase: 'incremental',
          sourceOffset: 100,
          commandsApplied: 7,
          commandsSkipped: 0,
          keysRecopied: 2,
          dbsResynced: 0,
          reconnects: 0,
          lagMs: 12,
          p50LagMs: 10,
          p99LagMs: 12,
          bytesBehind: 40,
          appliedOffset: 60,
          opsPerSecond: 5,
        }),
      ),
    );
    expect(record).toMatchObject({
      [TASK_METRIC.lagMs]: 12,
      [TASK_METRIC.bytesBehind]: 40,
      [TASK_METRIC.opsPerSecond]: 5,
      [TASK_METRIC.commandsApplied]: 7,
      [TASK_METRIC.keysRecopied]: 2,
    });
  });

  it('add the gaps, repair rounds and waiting keys when the notifications reader runs', () => {
    const progress: NotificationProgress = {
      phase: 'incremental',
      sourceOffset: undefined,
      commandsApplied: 0,
      commandsSkipped: 0,
      keysRecopied: 9,
      dbsResynced: 0,
      reconnects: 0,
      lagMs: 4,
      p50LagMs: 3,
      p99LagMs: 4,
      bytesBehind: undefined,
      appliedOffset: undefined,
      opsPerSecond: 2,
      reader: 'notifications',
      eventsReceived: 11,
      dirtyKeys: 5,
      gaps: 2,
      recentGaps: [],
      repairRounds: 3,
      repairing: false,
    };
    const [record] = emfOf(() => publishTaskMetrics('task-3', (m) => addIncrementalMetrics(m, progress)));
    expect(record).toMatchObject({
      [TASK_METRIC.eventGaps]: 2,
      [TASK_METRIC.repairRounds]: 3,
      [TASK_METRIC.dirtyKeys]: 5,
      [TASK_METRIC.keysRecopied]: 9,
    });
  });
});

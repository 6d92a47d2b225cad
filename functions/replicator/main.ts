import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { isDtsError } from '../../lib/errors.ts';
import type { IncrementalProgress } from '../../lib/incremental/incremental-types.ts';
import { TASK_METRIC } from '../../lib/metrics/task-metrics.ts';
import { replicateStep } from '../../lib/orchestration/replicate-step.ts';
import {
  earlierReplicatorVerdict,
  isPermanentFailure,
  recordReplicatorVerdict,
} from '../../lib/orchestration/replicator-verdict.ts';
import { REPLICATOR_TASK_ENV } from '../../lib/orchestration/step-types.ts';
import { TaskStore } from '../../lib/state/task-store.ts';
import { parseTaskSpec } from '../../lib/task/spec.ts';
import { addInconsistentKeys, addIncrementalMetrics, taskMetrics } from '../shared/task-metrics.ts';

/**
 * Entry of the Fargate replicator (the Incremental state's `ecs:runTask.sync`). The task id comes from
 * REDIS_DTS_TASK_ID, the spec from the task table (TABLE_NAME), passwords from the ECS secrets
 * REDIS_DTS_SOURCE_PASSWORD / REDIS_DTS_TARGET_PASSWORD (resolveEndpoint's defaults). It replicates
 * until the task's stop flag, `until: caught-up`, or SIGTERM (ECS StopTask), and exits 0; any failure
 * exits 1, so Step Functions retries it, and the retry resumes from the destination's marker; a
 * permanent failure is recorded, and the retries end at once with it (replicator-verdict.ts).
 */
async function main(): Promise<number> {
  const taskId = process.env[REPLICATOR_TASK_ENV];
  const table = process.env.TABLE_NAME;
  if (!taskId || !table) {
    log('error', `${REPLICATOR_TASK_ENV} and TABLE_NAME must be set (the stack sets both)`);
    return 1;
  }
  const store = new TaskStore(new DynamoDBClient({}), table);
  const task = await store.getTask(taskId);
  if (!task) {
    log('error', `task '${taskId}' is not in table ${table}`);
    return 1;
  }
  const earlier = earlierReplicatorVerdict(task.value);
  if (earlier) throw earlier;
  const spec = parseTaskSpec(task.value.spec, { mode: 'aws' });
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => stop.abort());
  const publisher = new MetricsPublisher(taskId);
  const outcome = await replicateStep(
    { taskId, spec },
    {
      store,
      signal: stop.signal,
      onProgress: (p) => publisher.progress(p),
      onSampledVerification: (n) => publisher.inconsistentKeys(n),
      progress: {
        update: () => undefined,
        log: (message, fields) => log('info', message, fields),
        finish: () => undefined,
        result: (fields) => log('info', 'result', fields),
      },
    },
  ).catch(async (e: unknown) => {
    if (isPermanentFailure(e)) await recordReplicatorVerdict(store, taskId, e);
    throw e;
  });
  log(
    'info',
    `incremental sync ended (${outcome.ended}) at ${outcome.position.replid}:${outcome.position.offset}`,
  );
  return 0;
}

const METRICS_INTERVAL_MS = 60_000;

/**
 * CloudWatch metrics from the container: Powertools writes them as EMF lines to stdout, which the
 * awslogs driver ships and CloudWatch turns into metrics. Counters are published as the increase since
 * the last publication, so their Sum over a period is meaningful.
 */
class MetricsPublisher {
  private readonly metrics: Metrics;
  private last: IncrementalProgress | undefined;
  private published = { commands: 0, recopied: 0 };
  private lastAt = 0;

  constructor(taskId: string) {
    this.metrics = taskMetrics(taskId, 'redis-dts-replicator');
    // More than one start in an execution means ECS or the state machine restarted the container.
    this.metrics.addMetric(TASK_METRIC.replicatorStarts, MetricUnit.Count, 1);
    this.metrics.publishStoredMetrics();
  }

  inconsistentKeys(n: number): void {
    addInconsistentKeys(this.metrics, n);
    this.metrics.publishStoredMetrics();
  }

  progress(p: IncrementalProgress): void {
    this.last = p;
    if (Date.now() - this.lastAt >= METRICS_INTERVAL_MS) this.flush();
  }

  flush(): void {
    const p = this.last;
    if (!p) return;
    this.lastAt = Date.now();
    addIncrementalMetrics(this.metrics, {
      ...p,
      commandsApplied: p.commandsApplied - this.published.commands,
      keysRecopied: p.keysRecopied - this.published.recopied,
    });
    this.published = { commands: p.commandsApplied, recopied: p.keysRecopied };
    this.metrics.publishStoredMetrics();
  }
}

/** One JSON line per event, as CloudWatch Logs Insights reads them. */
function log(level: 'info' | 'error', message: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (isDtsError(e)) log('error', e.message, { code: e.code, fix: e.fix });
    else log('error', `unexpected failure: ${(e as Error)?.stack ?? String(e)}`);
    process.exitCode = 1;
  },
);

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { isDtsError } from '../../lib/errors.ts';
import { replicateStep } from '../../lib/orchestration/replicate-step.ts';
import { REPLICATOR_TASK_ENV } from '../../lib/orchestration/step-types.ts';
import { TaskStore } from '../../lib/state/task-store.ts';
import { parseTaskSpec } from '../../lib/task/spec.ts';

/**
 * Entry of the Fargate replicator (the Incremental state's `ecs:runTask.sync`). The task id comes from
 * REDIS_DTS_TASK_ID, the spec from the task table (TABLE_NAME), passwords from the ECS secrets
 * REDIS_DTS_SOURCE_PASSWORD / REDIS_DTS_TARGET_PASSWORD (resolveEndpoint's defaults). It replicates
 * until the task's stop flag, `until: caught-up`, or SIGTERM (ECS StopTask), and exits 0; any failure
 * exits 1, so Step Functions retries it, and the retry resumes from the destination's marker.
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
  const spec = parseTaskSpec(task.value.spec, { mode: 'aws' });
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => stop.abort());
  const outcome = await replicateStep(
    { taskId, spec },
    {
      store,
      signal: stop.signal,
      progress: {
        update: () => undefined,
        log: (message, fields) => log('info', message, fields),
        finish: () => undefined,
        result: (fields) => log('info', 'result', fields),
      },
    },
  );
  log(
    'info',
    `incremental sync ended (${outcome.ended}) at ${outcome.position.replid}:${outcome.position.offset}`,
  );
  return 0;
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

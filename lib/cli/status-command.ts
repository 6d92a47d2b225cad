import { awsCallError } from '../aws/aws-call-error.ts';
import { DtsError } from '../errors.ts';
import { inPartsText, memorySummary } from '../fullsync/memory-summary.ts';
import { createDynamoClient, useLocalStore } from '../state/dynamo-client.ts';
import { hasLocalTask, localTaskIds } from '../state/local-state-dir.ts';
import {
  type NotificationStatus,
  type ShardCheckpoint,
  type TaskRecord,
  TaskStore,
  type UnitCheckpoint,
} from '../state/task-store.ts';
import { HELP } from './help.ts';
import { DEFAULT_STATE_DIR } from './sync-command.ts';
import { parseFlags } from './task-options.ts';
import { UsageError } from './usage-error.ts';

export const STORE_OPTIONS = {
  'state-dir': { type: 'string' },
  table: { type: 'string' },
  region: { type: 'string' },
} as const;

const OPTIONS = {
  'state-dir': { type: 'string' },
  table: { type: 'string' },
  region: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse(argv: string[], command: string) {
  return parseFlags(argv, OPTIONS, command);
}

type Values = Pick<ReturnType<typeof parse>['values'], 'state-dir' | 'table' | 'region'>;

/**
 * Runs `use` on the task store the flags name: the deployed table (--table, AWS credentials of the
 * default chain), or in the local state directory the store of `taskId` (each task has its own, see
 * lib/state/local-state-dir.ts); without a task id, locally, the store of the task updated last.
 * `actions` are the IAM actions named when AWS says no.
 */
export async function withStore<T>(
  values: Values,
  command: string,
  actions: string[],
  taskId: string | undefined,
  use: (store: TaskStore, where: string) => Promise<T>,
): Promise<T> {
  const table = values.table;
  if (table === undefined) {
    if (values.region !== undefined) throw new UsageError('--region goes with --table', command);
    const stateDir = values['state-dir'] ?? DEFAULT_STATE_DIR;
    const where = `state dir ${stateDir}`;
    const id = taskId ?? (await latestLocalTask(stateDir))?.taskId;
    if (id === undefined || !hasLocalTask(stateDir, id)) {
      throw new DtsError(
        'TASK_NOT_FOUND',
        taskId ? `no task '${taskId}' in ${where}` : `no task in ${where}`,
        "run 'redis-dts list' to see the tasks, or pass --state-dir",
      );
    }
    return await useLocalStore({ stateDir, taskId: id }, (store) => use(store, where));
  }
  if (values['state-dir'] !== undefined) {
    throw new UsageError(
      '--table and --state-dir exclude each other (a task on AWS, or a local one)',
      command,
    );
  }
  const client = createDynamoClient(values.region === undefined ? {} : { region: values.region });
  try {
    return await use(new TaskStore(client, table), `table ${table}`);
  } catch (e) {
    const region = values.region ?? process.env.AWS_REGION ?? 'the default region';
    throw awsCallError(e, {
      service: 'DynamoDB',
      actions,
      resource: `table ${table}`,
      endpoint: `DynamoDB in ${region}`,
      known: {
        ResourceNotFoundException: [
          `no DynamoDB table ${table} in ${region}`,
          "pass the stack's TableName output as --table, and the stack's region as --region",
        ],
      },
    });
  } finally {
    client.destroy();
  }
}

/** Every task of a local state directory, read from its own store (running or not), oldest first. */
async function localTasks(stateDir: string): Promise<TaskRecord[]> {
  const tasks: TaskRecord[] = [];
  for (const taskId of await localTaskIds(stateDir)) {
    tasks.push(...(await useLocalStore({ stateDir, taskId }, (store) => store.listTasks())));
  }
  return tasks.sort((a, b) => a.updatedAt.localeCompare(b.updatedAt));
}

async function latestLocalTask(stateDir: string): Promise<TaskRecord | undefined> {
  return (await localTasks(stateDir)).at(-1);
}

export async function statusCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, 'status');
  if (values.help) {
    process.stdout.write(HELP.status!);
    return 0;
  }
  const taskId = positionals[0];
  const actions = taskId ? ['dynamodb:GetItem', 'dynamodb:Query'] : ['dynamodb:Scan', 'dynamodb:Query'];
  return withStore(values, 'status', actions, taskId, async (store, where) => {
    const task = taskId ? (await store.getTask(taskId))?.value : (await store.listTasks()).at(-1);
    if (!task) {
      throw new DtsError(
        'TASK_NOT_FOUND',
        taskId ? `no task '${taskId}' in ${where}` : `no task in ${where}`,
        values.table === undefined
          ? "run 'redis-dts list' to see the tasks, or pass --state-dir"
          : `run 'redis-dts list --table ${values.table}' to see the tasks, or pass another --table or --region`,
      );
    }
    const units = (await store.listCheckpoints(task.taskId)).map((c) => c.value);
    const shards = (await store.listShards(task.taskId)).map((s) => s.value);
    process.stdout.write(
      values.json
        ? `${JSON.stringify({ task, units, shards }, null, 2)}\n`
        : formatStatus(task, units, shards),
    );
    return 0;
  });
}

export async function listCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, 'list');
  if (values.help) {
    process.stdout.write(HELP.list!);
    return 0;
  }
  const list = async (tasks: TaskRecord[]) => {
    if (values.json) process.stdout.write(`${JSON.stringify(tasks, null, 2)}\n`);
    else if (tasks.length === 0) process.stdout.write('no tasks\n');
    else
      for (const t of tasks)
        process.stdout.write(`${t.taskId}\t${t.status}\t${t.phase}\t${t.updatedAt}\t${t.name}\n`);
    return 0;
  };
  if (values.table === undefined && values.region === undefined) {
    return list(await localTasks(values['state-dir'] ?? DEFAULT_STATE_DIR));
  }
  return withStore(values, 'list', ['dynamodb:Scan'], undefined, async (store) =>
    list(await store.listTasks()),
  );
}

function formatStatus(task: TaskRecord, units: UnitCheckpoint[], shards: ShardCheckpoint[]): string {
  const lines = [
    `task     ${task.taskId} (${task.name})`,
    `status   ${task.status}, phase ${task.phase}, updated ${task.updatedAt}`,
  ];
  for (const u of units) {
    lines.push(
      `  ${u.unitId.padEnd(8)} db ${u.sourceDb} → ${u.targetDb}: ${u.done ? 'done' : `cursor ${u.cursor}`}, ` +
        `${u.keysWritten.toLocaleString('en-US')} keys written, ${(u.bytes / 1e6).toFixed(1)} MB, ` +
        `${u.keysVanished} vanished, ${u.keysFailed} failed` +
        (u.stamp ? `, stamp ${u.stamp.replid.slice(0, 8)}…:${u.stamp.offset}` : '') +
        (u.sourceNode ? `, read from ${u.sourceNode.host}:${u.sourceNode.port}` : ''),
    );
  }
  const memory = memorySummary(units, shards);
  if (memory.peakRssMb !== undefined || memory.keysInParts > 0) {
    lines.push(
      `memory   ${memory.peakRssMb !== undefined ? `full-sync peak RSS ${memory.peakRssMb.toFixed(0)} MB` : ''}` +
        (memory.peakRssMb !== undefined && memory.keysInParts > 0 ? '; ' : '') +
        inPartsText(memory),
    );
  }
  // One replication stream per source shard (a cluster has one per master).
  for (const s of shards) {
    lines.push(
      `  stream ${s.shardId}${s.node ? ` (${s.node.host}:${s.node.port})` : ''}: ${s.phase}, ` +
        (s.rdb === 'pending' || s.rdb === 'loading'
          ? 'full sync from the RDB not finished (a run takes the snapshot again)'
          : `from ${s.replid.slice(0, 8)}…:${s.startOffset} to ${s.appliedOffset}`) +
        (s.rdbKeys !== undefined ? `, ${s.rdbKeys.toLocaleString('en-US')} keys loaded from the RDB` : '') +
        (s.commandsApplied !== undefined
          ? `, ${s.commandsApplied.toLocaleString('en-US')} commands applied, ${(s.keysRecopied ?? 0).toLocaleString('en-US')} keys re-copied`
          : ''),
    );
  }
  if (task.precheck) {
    const notPassed = task.precheck.items.filter((i) => i.status === 'warning' || i.status === 'failed');
    lines.push(
      `precheck ${task.precheck.status}${notPassed.length ? `: ${notPassed.map((i) => `${i.title} (${i.status})`).join(', ')}` : ''}`,
    );
  }
  if (task.sampledVerification) {
    const v = task.sampledVerification;
    lines.push(
      `sampled  ${v.inconsistentKeys} inconsistent of ${v.keysCompared} keys verified at ${v.at}` +
        (v.examples.length > 0 ? ` (${v.examples.join(', ')})` : ''),
    );
  }
  if (task.notifications) lines.push(...notificationLines(task.notifications));
  if (task.lastError) lines.push(`error    ${task.lastError.message}`, `fix      ${task.lastError.fix}`);
  return `${lines.join('\n')}\n`;
}

export async function stopCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, 'stop');
  if (values.help) {
    process.stdout.write(HELP.stop!);
    return 0;
  }
  const taskId = positionals[0];
  if (!taskId) throw new UsageError('name the task to stop (see redis-dts list)', 'stop');
  return withStore(values, 'stop', ['dynamodb:GetItem', 'dynamodb:PutItem'], taskId, async (store, where) => {
    if (!(await store.getTask(taskId))) {
      throw new DtsError(
        'TASK_NOT_FOUND',
        `no task '${taskId}' in ${where}`,
        "run 'redis-dts list' to see the tasks",
      );
    }
    await store.requestStop(taskId);
    process.stdout.write(
      values.table === undefined
        ? `stop requested for '${taskId}': it finishes the chunks in flight, checkpoints and exits; rerun it to resume\n`
        : `stop requested for '${taskId}': its full sync stops after the chunks in flight; start the same spec again to resume\n`,
    );
    return 0;
  });
}

/** The notification reader's lines: subscription, gaps (each a window of possibly lost events), repairs. */
function notificationLines(n: NotificationStatus): string[] {
  const lines = [
    `events   keyspace notifications since ${n.subscribedAt} (${n.subscription}); ` +
      `${n.keysRecopied} keys re-copied, ${n.dirtyKeys} waiting`,
    `gaps     ${n.gaps} gap(s) in the events` +
      (n.recentGaps.length > 0 ? `, last at ${n.recentGaps.at(-1)!.at}: ${n.recentGaps.at(-1)!.cause}` : ''),
  ];
  const r = n.lastRepair;
  lines.push(
    `repair   ${n.repairRounds} round(s)` +
      (r
        ? `, last at ${r.at}: ${r.keysCompared} keys compared, ${r.keysDiffering} differed and were copied again`
        : ''),
  );
  return lines;
}

import { DtsError } from '../errors.ts';
import { openLocalStore } from '../state/dynamo-client.ts';
import type { TaskRecord, UnitCheckpoint } from '../state/task-store.ts';
import { HELP } from './help.ts';
import { DEFAULT_STATE_DIR } from './sync-command.ts';
import { parseFlags } from './task-options.ts';
import { UsageError } from './usage-error.ts';

const OPTIONS = {
  'state-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse(argv: string[], command: string) {
  return parseFlags(argv, OPTIONS, command);
}

export async function statusCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, 'status');
  if (values.help) {
    process.stdout.write(HELP.status!);
    return 0;
  }
  const local = await openLocalStore({ stateDir: values['state-dir'] ?? DEFAULT_STATE_DIR, shared: true });
  try {
    const tasks = await local.store.listTasks();
    const task = positionals[0] ? tasks.find((t) => t.taskId === positionals[0]) : tasks[tasks.length - 1];
    if (!task) {
      throw new DtsError(
        'TASK_NOT_FOUND',
        positionals[0]
          ? `no task '${positionals[0]}' in the state directory`
          : 'no task in the state directory',
        "run 'redis-dts list' to see the tasks, or pass --state-dir",
      );
    }
    const units = (await local.store.listCheckpoints(task.taskId)).map((c) => c.value);
    process.stdout.write(
      values.json ? `${JSON.stringify({ task, units }, null, 2)}\n` : formatStatus(task, units),
    );
    return 0;
  } finally {
    await local.close();
  }
}

export async function listCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, 'list');
  if (values.help) {
    process.stdout.write(HELP.list!);
    return 0;
  }
  const local = await openLocalStore({ stateDir: values['state-dir'] ?? DEFAULT_STATE_DIR, shared: true });
  try {
    const tasks = await local.store.listTasks();
    if (values.json) process.stdout.write(`${JSON.stringify(tasks, null, 2)}\n`);
    else if (tasks.length === 0) process.stdout.write('no tasks\n');
    else
      for (const t of tasks)
        process.stdout.write(`${t.taskId}\t${t.status}\t${t.phase}\t${t.updatedAt}\t${t.name}\n`);
    return 0;
  } finally {
    await local.close();
  }
}

function formatStatus(task: TaskRecord, units: UnitCheckpoint[]): string {
  const lines = [
    `task     ${task.taskId} (${task.name})`,
    `status   ${task.status}, phase ${task.phase}, updated ${task.updatedAt}`,
  ];
  for (const u of units) {
    lines.push(
      `  ${u.unitId.padEnd(8)} db ${u.sourceDb} → ${u.targetDb}: ${u.done ? 'done' : `cursor ${u.cursor}`}, ` +
        `${u.keysWritten.toLocaleString('en-US')} keys written, ${(u.bytes / 1e6).toFixed(1)} MB, ` +
        `${u.keysVanished} vanished, ${u.keysFailed} failed` +
        (u.stamp ? `, stamp ${u.stamp.replid.slice(0, 8)}…:${u.stamp.offset}` : ''),
    );
  }
  if (task.precheck) {
    const notPassed = task.precheck.items.filter((i) => i.status === 'warning' || i.status === 'failed');
    lines.push(
      `precheck ${task.precheck.status}${notPassed.length ? `: ${notPassed.map((i) => `${i.title} (${i.status})`).join(', ')}` : ''}`,
    );
  }
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
  const local = await openLocalStore({ stateDir: values['state-dir'] ?? DEFAULT_STATE_DIR, shared: true });
  try {
    if (!(await local.store.getTask(taskId))) {
      throw new DtsError(
        'TASK_NOT_FOUND',
        `no task '${taskId}' in the state directory`,
        "run 'redis-dts list' to see the tasks",
      );
    }
    await local.store.requestStop(taskId);
    process.stdout.write(
      `stop requested for '${taskId}': it finishes the chunks in flight, checkpoints and exits; rerun it to resume\n`,
    );
    return 0;
  } finally {
    await local.close();
  }
}

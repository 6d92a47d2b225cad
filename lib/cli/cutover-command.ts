import { DtsError } from '../errors.ts';
import { DEFAULT_QUIET_TIMEOUT_MS, requestCutOver } from '../orchestration/cut-over-state.ts';
import { durationMs } from '../util/duration.ts';
import { HELP } from './help.ts';
import { STORE_OPTIONS, withStore } from './status-command.ts';
import { parseFlags } from './task-options.ts';
import { UsageError } from './usage-error.ts';

const OPTIONS = {
  ...STORE_OPTIONS,
  'quiet-timeout': { type: 'string' },
  'no-wait': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const POLL_MS = 500;

/**
 * `redis-dts cutover TASK`: asks a running incremental task to finish (see cut-over-state.ts and
 * CutOverWatch), then, unless --no-wait, follows it until the cut-over is done (exit 0, the final
 * verification's summary printed), refused (exit 1 with the reason and the fix), or the task failed.
 * Each poll opens the store again: a local run ends right after its Cleanup, and its final state is
 * then read from the state directory on disk.
 */
export async function cutoverCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, OPTIONS, 'cutover');
  if (values.help) {
    process.stdout.write(HELP.cutover!);
    return 0;
  }
  const taskId = positionals[0];
  if (!taskId) throw new UsageError('name the task to cut over (see redis-dts list)', 'cutover');
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`, 'cutover');
  const quiet =
    values['quiet-timeout'] === undefined ? DEFAULT_QUIET_TIMEOUT_MS : durationMs(values['quiet-timeout']);
  if (typeof quiet !== 'number' || quiet <= 0) {
    throw new UsageError(
      `--quiet-timeout '${values['quiet-timeout']}': expected a duration like 60s, 2m or 500ms`,
      'cutover',
    );
  }
  const actions = ['dynamodb:GetItem', 'dynamodb:PutItem'];
  await withStore(values, 'cutover', actions, taskId, (store, where) =>
    requestCutOver(store, taskId, quiet, where),
  );
  process.stdout.write(
    `cut-over requested for '${taskId}': waiting up to ${quiet / 1000} s for every change to be applied and the ` +
      'source to go quiet, then the final verification\n',
  );
  if (values['no-wait']) {
    process.stdout.write(
      `follow it with: redis-dts status ${taskId}${values.table ? ` --table ${values.table}` : ''}\n`,
    );
    return 0;
  }
  for (;;) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    const { cut, task } = await withStore(values, 'cutover', ['dynamodb:GetItem'], taskId, async (store) => ({
      cut: (await store.getCutOver(taskId))?.value,
      task: (await store.getTask(taskId))?.value,
    }));
    if (cut?.state === 'refused') {
      throw new DtsError(
        'CUT_OVER_REFUSED',
        `cut-over of '${taskId}' refused: ${cut.reason}`,
        cut.fix ?? 'ask again',
      );
    }
    if (cut?.state === 'done') {
      process.stdout.write(`${cut.verify?.summary ?? 'verify: not run'}\n`);
      process.stdout.write(
        `task '${taskId}' cut over: every change is applied and verified; switch the application now\n`,
      );
      return 0;
    }
    if (task?.status === 'failed' || task?.status === 'stopped') {
      const e = task.lastError;
      throw new DtsError(
        e?.code ?? 'TASK_FAILED',
        `task '${taskId}' ${task.status} during the cut-over${e ? `: ${e.message}` : ''}`,
        e?.fix ?? `see redis-dts status ${taskId}`,
      );
    }
    if (task?.status === 'succeeded') {
      process.stdout.write(`task '${taskId}' ended (succeeded) before the cut-over was taken\n`);
      return 0;
    }
  }
}

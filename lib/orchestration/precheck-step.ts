import { taskEvents } from '../events/task-events.ts';
import { formatPrecheckReport } from '../precheck/format-report.ts';
import { runPrecheck } from '../precheck/run-precheck.ts';
import type { PrecheckItem } from '../precheck/types.ts';
import { precheckForResume } from '../precheck/verdict.ts';
import type { TaskStore } from '../state/task-store.ts';
import { precheckItems } from './lifecycle-events.ts';
import type { SecretValues } from './step-endpoints.ts';
import type { FullSyncReader, TaskStepInput } from './step-types.ts';

/** The longest cause a Fail state takes; a longer report is cut (the whole one is in the function's log). */
const MAX_CAUSE = 32_000;

export interface PrecheckStepResult {
  status: 'passed' | 'warning' | 'failed';
  items: PrecheckItem[];
  /** The report as text: the Fail state's cause when the task may not run. */
  summary: string;
  /** The full sync's reader (the spec's auto resolved): the state machine branches on it. */
  fullSyncReader: FullSyncReader;
}

/**
 * The Precheck state: runs every check and returns the verdict; the machine fails the task with the
 * report when it failed, or warned without acknowledgeWarnings.
 */
export async function precheckStep(
  input: TaskStepInput,
  o: { store: TaskStore; secrets?: SecretValues },
): Promise<PrecheckStepResult> {
  await o.store.updateTask(input.taskId, { phase: 'precheck' });
  // A unit checkpoint (scan) or a shard whose RDB load began: the destination holds the task's own keys.
  const units = await o.store.listCheckpoints(input.taskId);
  const shards = await o.store.listShards(input.taskId);
  const resuming =
    units.length > 0 || shards.some((s) => s.value.rdb !== undefined && s.value.rdb !== 'pending');
  const report = precheckForResume(await runPrecheck(input.spec, { secretValues: o.secrets }), resuming);
  // A task run again keeps the reader its first run took (auto may judge otherwise today).
  const reader: FullSyncReader | undefined = shards.some((s) => s.value.rdb !== undefined)
    ? 'rdb'
    : units.length > 0
      ? 'scan'
      : report.fullSyncReader;
  const text = formatPrecheckReport(report);
  // The same verdict as the state machine's PrecheckPassed? choice.
  const events = taskEvents(input.spec);
  const items = precheckItems(report.items);
  // Kept on the task: status shows it, and a failed task's event names the failing check.
  await o.store.updateTask(input.taskId, { precheck: { status: report.status, items } });
  if (report.status === 'failed' || (report.status === 'warning' && !input.spec.acknowledgeWarnings))
    await events.emit('Precheck Failed', { taskId: input.taskId, status: report.status, items });
  else await events.emit('Precheck Passed', { taskId: input.taskId, status: report.status, items });
  return {
    status: report.status,
    items: report.items,
    summary: text.length > MAX_CAUSE ? `${text.slice(0, MAX_CAUSE)}\n…` : text,
    fullSyncReader: reader ?? 'scan',
  };
}

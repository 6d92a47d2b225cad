import { DtsError } from '../errors.ts';
import type { TaskEventDetail } from '../events/event-types.ts';
import type { CutOverRequest, TaskStore } from '../state/task-store.ts';
import { parseTaskSpec } from '../task/spec.ts';

/** Default of --quiet-timeout: how long a cut-over waits for the source to go quiet. */
export const DEFAULT_QUIET_TIMEOUT_MS = 60_000;

/**
 * Asks a running incremental task to cut over (`redis-dts cutover`, the Cut Over Task event): writes
 * the request the replicator's CutOverWatch reads. Refused at once, with the reason, where a cut-over
 * has no meaning: a task that is not running, a full-only task, one still in its full sync.
 */
export async function requestCutOver(
  store: TaskStore,
  taskId: string,
  quietTimeoutMs: number,
  where: string,
): Promise<CutOverRequest> {
  const task = (await store.getTask(taskId))?.value;
  if (!task) {
    throw new DtsError(
      'TASK_NOT_FOUND',
      `no task '${taskId}' in ${where}`,
      "run 'redis-dts list' to see the tasks",
    );
  }
  const refuse = (why: string, fix: string) =>
    new DtsError('CUT_OVER_REFUSED', `task '${taskId}' cannot cut over: ${why}`, fix);
  const spec = parseTaskSpec(task.spec);
  if (spec.syncType === 'full') {
    throw refuse('it is a full sync only, which ends by itself', 'wait for it to end (redis-dts status)');
  }
  if (task.status !== 'running') {
    throw refuse(
      `it is ${task.status}, not running`,
      'start it again, and ask for the cut-over once it replicates',
    );
  }
  if (task.phase !== 'incremental') {
    throw refuse(
      `it is in phase ${task.phase}; a cut-over ends the incremental sync`,
      'wait until redis-dts status shows phase incremental (or the Caught Up event), then ask again',
    );
  }
  const now = new Date().toISOString();
  const request: CutOverRequest = { requestedAt: now, quietTimeoutMs, state: 'requested', updatedAt: now };
  const existing = await store.getCutOver(taskId);
  if (existing?.value.state === 'accepted') return existing.value;
  await store.putCutOver(taskId, request, existing?.version);
  return request;
}

/** Verify ran: a cut-over in progress keeps its summary for the Task Cut Over event. */
export async function recordCutOverVerify(
  store: TaskStore,
  taskId: string,
  verify: NonNullable<CutOverRequest['verify']>,
): Promise<void> {
  const c = await store.getCutOver(taskId);
  if (c?.value.state !== 'accepted') return;
  await store.putCutOver(taskId, { ...c.value, verify, updatedAt: new Date().toISOString() }, c.version);
}

/** Cleanup ran: an accepted cut-over is done; returns the Task Cut Over detail (less the task id). */
export async function finishCutOver(
  store: TaskStore,
  taskId: string,
): Promise<Omit<TaskEventDetail<'Task Cut Over'>, 'taskId'> | undefined> {
  const c = await store.getCutOver(taskId);
  if (c?.value.state !== 'accepted') return undefined;
  const verify = c.value.verify ?? {
    mode: 'off' as const,
    skipped: true,
    consistent: true,
    keysCompared: 0,
    keysDiffering: 0,
    summary: 'verify: not run',
  };
  await store.putCutOver(
    taskId,
    { ...c.value, state: 'done', updatedAt: new Date().toISOString() },
    c.version,
  );
  return {
    quietTimeoutMs: c.value.quietTimeoutMs,
    verify: { ...verify, mode: verify.mode as TaskEventDetail<'Task Cut Over'>['verify']['mode'] },
  };
}

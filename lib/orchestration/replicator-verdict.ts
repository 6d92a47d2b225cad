import { DtsError, isDtsError } from '../errors.ts';
import type { TaskRecord, TaskStore } from '../state/task-store.ts';

/** Failures a new attempt may get past: the network, a busy or restarting server. */
const TRANSIENT_CODES = new Set([
  'CONNECTION_LOST',
  'UNREACHABLE',
  'TIMEOUT',
  'REPLICATION_LINK_LOST',
  'REPLICATION_TIMEOUT',
  'APPLY_INTERRUPTED',
  'SERVER_LOADING',
  'SERVER_BUSY',
  'TOO_MANY_CLIENTS',
]);

/** A named failure that a new attempt would meet again (a refused write, a lost backlog, a bad spec…). */
export function isPermanentFailure(e: unknown): e is DtsError {
  return isDtsError(e) && !TRANSIENT_CODES.has(e.code);
}

/**
 * The RunReplicator state retries any container that exited non-zero (Step Functions sees only
 * States.TaskFailed, a crash and a verdict alike). A permanent failure is therefore written to the task
 * record, and the retries of the same execution end at once with it, instead of redoing work that fails
 * the same way (an RDB load refused for memory would empty and reload its dbs three more times).
 * Validate clears it when the task is started again.
 */
export async function recordReplicatorVerdict(store: TaskStore, taskId: string, e: DtsError): Promise<void> {
  await store.updateTask(taskId, {
    replicatorVerdict: { code: e.code, message: e.message, fix: e.fix, at: new Date().toISOString() },
  });
}

/** The verdict of an earlier attempt of this execution, as the error it raised; undefined if none. */
export function earlierReplicatorVerdict(task: TaskRecord): DtsError | undefined {
  const v = task.replicatorVerdict;
  if (!v) return undefined;
  return new DtsError(
    v.code,
    `an earlier attempt of this run failed at ${v.at} and would fail again: ${v.message}`,
    v.fix,
  );
}

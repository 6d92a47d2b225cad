import { DtsError } from '../errors.ts';
import { taskEvents } from '../events/task-events.ts';
import type { TaskStore } from '../state/task-store.ts';
import { defaultTaskId, generateTaskName, parseTaskSpec, redactSpec, type TaskSpec } from '../task/spec.ts';
import { TaskSpecError } from '../task/spec-errors.ts';
import { endpointLabel } from './lifecycle-events.ts';
import { DTS_ERROR_PREFIX } from './step-error.ts';
import type { ContinueInput, SpecRefusal, TaskState } from './step-types.ts';

export interface ValidateOptions {
  store: TaskStore;
  /** 'aws' refuses plain passwords in the spec: they would stay in the execution history. */
  mode: 'local' | 'aws';
}

/**
 * The Validate state: parses the spec (or, for a continued execution, reloads the stored one) and
 * records the task. Re-running a task id resumes it: its checkpoints are kept. An invalid spec is
 * returned as a refusal (nothing recorded), which the state machine ends the execution with.
 */
export async function validateStep(input: unknown, o: ValidateOptions): Promise<TaskState | SpecRefusal> {
  const resume = continuation(input);
  if (resume) return resumeTask(resume, o);

  const raw = isRecord(input) && 'spec' in input ? input.spec : input;
  let spec: TaskSpec;
  try {
    spec = parseTaskSpec(raw, { mode: o.mode });
  } catch (e) {
    if (!(e instanceof TaskSpecError)) throw e;
    return { refused: { error: `${DTS_ERROR_PREFIX}${e.code}`, cause: e.oneLine() } };
  }
  const taskId = spec.taskId ?? defaultTaskId(spec);
  const stored = redactSpec({ ...spec, taskId });
  const now = new Date().toISOString();
  await o.store.clearStop(taskId);
  await o.store.clearCutOver(taskId);
  const existing = await o.store.getTask(taskId);
  // An incremental task that ended cleanly removed its markers: running it again is a new sync, not a
  // resume from offsets the source may no longer hold.
  const fresh = existing?.value.status === 'succeeded' && spec.syncType !== 'full';
  if (fresh) await o.store.deleteSyncState(taskId);
  const name = existing?.value.name ?? spec.name ?? generateTaskName(spec);
  if (existing) {
    await o.store.updateTask(taskId, {
      status: 'running',
      phase: 'validate',
      spec: stored as unknown as Record<string, unknown>,
      lastError: undefined,
      replicatorVerdict: undefined,
      ...(fresh ? { fullSyncStartedAt: undefined, fullSyncCompletedAt: undefined } : {}),
    });
  } else {
    await o.store.putTask({
      taskId,
      name,
      spec: stored as unknown as Record<string, unknown>,
      status: 'running',
      phase: 'validate',
      createdAt: now,
      updatedAt: now,
    });
  }
  await taskEvents(spec).emit('Task Started', {
    taskId,
    name,
    syncType: spec.syncType,
    source: endpointLabel(spec.source),
    target: endpointLabel(spec.target),
    resumed: existing !== undefined && !fresh,
  });
  return taskState({ ...spec, taskId }, 'start');
}

async function resumeTask(resume: ContinueInput, o: ValidateOptions): Promise<TaskState> {
  const task = await o.store.getTask(resume.taskId);
  if (!task) {
    throw new DtsError(
      'TASK_NOT_FOUND',
      `task '${resume.taskId}' has no record to continue from`,
      'start the task again with its full spec',
    );
  }
  // The stored copy is redacted; on AWS it never held a password, so it is the spec as given.
  const spec = parseTaskSpec(task.value.spec, { mode: o.mode });
  await o.store.updateTask(resume.taskId, { status: 'running' });
  return taskState({ ...spec, taskId: resume.taskId }, resume.phase);
}

function taskState(spec: TaskSpec & { taskId: string }, resumeAt: TaskState['resumeAt']): TaskState {
  return {
    taskId: spec.taskId,
    spec,
    syncType: spec.syncType,
    incrementalMode: spec.incremental.mode,
    resumeAt,
  };
}

function continuation(input: unknown): ContinueInput | undefined {
  if (!isRecord(input) || !isRecord(input.resume)) return undefined;
  const { taskId, phase } = input.resume;
  if (typeof taskId !== 'string' || (phase !== 'fullsync' && phase !== 'incremental')) {
    throw new DtsError(
      'BAD_CONTINUATION',
      'resume must be {"taskId": "…", "phase": "fullsync" | "incremental"}',
      'start the task with its spec instead of a resume object',
    );
  }
  return { taskId, phase };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

import { taskEvents } from '../events/task-events.ts';
import type { TaskRecord, TaskStore } from '../state/task-store.ts';
import { STOPPED_CODE } from './copy-chunk-step.ts';
import { DTS_ERROR_PREFIX } from './step-error.ts';
import type { CaughtError } from './step-types.ts';

/**
 * The RecordFailure state (every Catch leads here, then to Fail): stores the error as the task's
 * last error, so `redis-dts status` shows it without reading the execution history.
 */
export async function recordFailureStep(
  input: { taskId?: string; error?: CaughtError },
  o: { store: TaskStore },
): Promise<{ code: string; message: string }> {
  const { code, message, fix } = describeCaught(input.error ?? {});
  const task = input.taskId ? await o.store.getTask(input.taskId) : undefined;
  if (input.taskId && task) {
    await o.store.updateTask(input.taskId, {
      status: code === STOPPED_CODE ? 'stopped' : 'failed',
      lastError: { code, message, fix },
    });
    // The stored spec is the redacted one: it still says where the events go.
    const events = taskEvents(task.value.spec);
    if (code === STOPPED_CODE)
      await events.emit('Task Stopped', { taskId: input.taskId, phase: task.value.phase });
    else
      await events.emit('Task Failed', {
        taskId: input.taskId,
        code,
        ...failureText(task.value, code, message, fix),
      });
  }
  return { code, message };
}

/** A failed precheck's event names its first failing check, not the whole report. */
function failureText(
  task: TaskRecord,
  code: string,
  message: string,
  fix: string,
): { cause: string; fix: string } {
  if (code !== 'PrecheckFailed') return { cause: message, fix };
  const items = task.precheck?.items ?? [];
  const item = items.find((i) => i.status === 'failed') ?? items.find((i) => i.status === 'warning');
  if (!item) return { cause: message, fix };
  return {
    cause: `precheck ${item.status === 'failed' ? 'failed' : 'warned (not acknowledged)'}: ${item.title}: ${item.detail}`,
    fix: item.fix ?? 'see the precheck report (redis-dts status)',
  };
}

/** Splits a caught error into code, message and fix ("message. Fix: fix", as DtsError.oneLine writes). */
export function describeCaught(e: CaughtError): { code: string; message: string; fix: string } {
  const name = e.Error ?? 'States.Unknown';
  const code = name.startsWith(DTS_ERROR_PREFIX) ? name.slice(DTS_ERROR_PREFIX.length) : name;
  let text = e.Cause ?? '';
  try {
    const parsed = JSON.parse(text) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') text = parsed.errorMessage;
  } catch {
    // A plain-text cause (a Fail we built, or a States.* error) is the message itself.
  }
  const at = text.lastIndexOf('. Fix: ');
  if (at < 0) return { code, message: text || name, fix: 'see the execution history of the task' };
  return { code, message: text.slice(0, at), fix: text.slice(at + '. Fix: '.length) };
}

import type { TaskEventDetail } from '../events/event-types.ts';
import { taskEvents } from '../events/task-events.ts';
import type { PrecheckItem } from '../precheck/types.ts';
import type { TaskRecord, TaskStore } from '../state/task-store.ts';
import type { EndpointSpec, TaskSpec } from '../task/spec.ts';

/**
 * The lifecycle events that need the task store to be sent once (a step may run again: a retried
 * Lambda, a continued execution, a resumed local run). Each step otherwise emits its own event through
 * taskEvents(spec).
 */

/** host:port of an endpoint spec, for the Task Started event (never a password). */
export function endpointLabel(ep: EndpointSpec): string {
  if ('url' in ep) {
    try {
      return new URL(ep.url).host;
    } catch {
      return 'unknown';
    }
  }
  return `${ep.host}:${ep.port}`;
}

export function precheckItems(items: readonly PrecheckItem[]): TaskEventDetail<'Precheck Passed'>['items'] {
  return items.map((i) => ({
    id: i.id,
    title: i.title,
    status: i.status,
    detail: i.detail,
    ...(i.fix !== undefined ? { fix: i.fix } : {}),
  }));
}

/** Marks the start of the full sync (the first one of this sync, or one redone after a lost backlog). */
export async function markFullSyncStarted(store: TaskStore, taskId: string): Promise<void> {
  const task = await store.getTask(taskId);
  if (task && !task.value.fullSyncStartedAt) {
    await store.updateTask(taskId, {
      fullSyncStartedAt: new Date().toISOString(),
      fullSyncCompletedAt: undefined,
    });
  }
}

/** Sends Full Sync Completed unless this full sync already did. */
export async function fullSyncCompleted(
  store: TaskStore,
  spec: TaskSpec,
  taskId: string,
  figures: { reader: 'scan' | 'rdb'; keys: number; bytes: number },
): Promise<void> {
  const task = await store.getTask(taskId);
  if (!task || task.value.fullSyncCompletedAt) return;
  const now = new Date();
  const began = task.value.fullSyncStartedAt ? Date.parse(task.value.fullSyncStartedAt) : now.getTime();
  await store.updateTask(taskId, { fullSyncCompletedAt: now.toISOString() });
  await taskEvents(spec).emit('Full Sync Completed', {
    taskId,
    ...figures,
    seconds: Math.max(0, (now.getTime() - began) / 1000),
  });
}

/** A redone full sync (onBacklogLost resync) is a new one: it starts, and completes, again. */
export function fullSyncRedone(): Pick<TaskRecord, 'fullSyncStartedAt' | 'fullSyncCompletedAt'> {
  return { fullSyncStartedAt: new Date().toISOString(), fullSyncCompletedAt: undefined };
}

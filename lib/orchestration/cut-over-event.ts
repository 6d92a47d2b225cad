import { DtsError } from '../errors.ts';
import type { TaskStore } from '../state/task-store.ts';
import { DEFAULT_QUIET_TIMEOUT_MS, requestCutOver } from './cut-over-state.ts';

/** Detail-type of the event that asks a task on the bus to cut over. */
export const CUT_OVER_EVENT = { source: 'redis-dts', detailType: 'Cut Over Task' } as const;

/**
 * A `Cut Over Task` event's detail, `{"taskId": "…", "quietTimeoutMs": 60000}`: the same request as
 * `redis-dts cutover TASK --table …`. A bad detail or a refusal fails the invocation with its reason
 * (in the function's log; EventBridge retries only throttling of the target, not errors of ours).
 */
export async function cutOverFromEvent(
  detail: unknown,
  o: { store: TaskStore },
): Promise<{ taskId: string }> {
  const d = (typeof detail === 'object' && detail !== null ? detail : {}) as Record<string, unknown>;
  const quiet = d.quietTimeoutMs ?? DEFAULT_QUIET_TIMEOUT_MS;
  if (typeof d.taskId !== 'string' || d.taskId === '' || typeof quiet !== 'number' || !(quiet > 0)) {
    throw new DtsError(
      'BAD_CUT_OVER_EVENT',
      `a Cut Over Task event needs the detail {"taskId": "<task id>", "quietTimeoutMs": <ms, optional>}, got ${JSON.stringify(detail)}`,
      'send the task id of a running task (redis-dts list --table …) as detail.taskId',
    );
  }
  await requestCutOver(o.store, d.taskId, quiet, `table ${o.store.tableName}`);
  return { taskId: d.taskId };
}

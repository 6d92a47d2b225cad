import { type CaptureStartResult, captureStart } from '../replication/capture-start.ts';
import type { TaskStore } from '../state/task-store.ts';
import { type SecretValues, stepEndpoints } from './step-endpoints.ts';
import type { TaskStepInput } from './step-types.ts';

/** Standalone sources have one shard. */
export const SHARD_ID = '0';

/**
 * The CaptureStart state: the source offset incremental sync starts from, taken before the full sync and
 * stored as the shard's checkpoint. A task run again keeps the offset it captured first: its full sync
 * resumes, and the changes since that offset are still the ones to catch up on.
 */
export async function captureStartStep(
  input: TaskStepInput,
  o: { store: TaskStore; secrets?: SecretValues },
): Promise<CaptureStartResult> {
  const saved = await o.store.getShard(input.taskId, SHARD_ID);
  if (saved) {
    await o.store.updateTask(input.taskId, { phase: 'capture-start' });
    return { replid: saved.value.replid, offset: saved.value.startOffset, via: 'checkpoint' };
  }
  const { source } = stepEndpoints(input.spec, o.secrets);
  const start = await captureStart(source);
  await o.store.putShard(
    input.taskId,
    {
      shardId: SHARD_ID,
      replid: start.replid,
      startOffset: start.offset,
      appliedOffset: start.offset,
      phase: 'captured',
      updatedAt: new Date().toISOString(),
    },
    undefined,
  );
  await o.store.updateTask(input.taskId, { phase: 'capture-start' });
  return start;
}

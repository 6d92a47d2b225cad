import { notificationStart } from '../notifications/notification-start.ts';
import { type CaptureStartResult, captureStart } from '../replication/capture-start.ts';
import type { TaskStore } from '../state/task-store.ts';
import { sourceShards } from './source-shards.ts';
import { type SecretValues, stepEndpoints } from './step-endpoints.ts';
import type { FullSyncReader, TaskStepInput } from './step-types.ts';

/**
 * The CaptureStart state: the offset each source shard's incremental sync starts from (one shard for a
 * standalone source, one per master of a cluster), taken before the full sync and stored as the shard's
 * checkpoint. A task run again keeps the offsets it captured first: its full sync resumes, and the
 * changes since those offsets are still the ones to catch up on.
 */
export async function captureStartStep(
  input: TaskStepInput & { fullSyncReader?: FullSyncReader },
  o: { store: TaskStore; secrets?: SecretValues },
): Promise<CaptureStartResult & { shards: number; reader: FullSyncReader }> {
  const saved = await o.store.listShards(input.taskId);
  if (saved.length > 0) {
    await o.store.updateTask(input.taskId, { phase: 'capture-start' });
    const first = saved[0]!.value;
    const reader = first.rdb ? 'rdb' : 'scan';
    return {
      replid: first.replid,
      offset: first.startOffset,
      via: 'checkpoint',
      shards: saved.length,
      reader,
    };
  }
  const reader = input.fullSyncReader ?? 'scan';
  const { source } = stepEndpoints(input.spec, o.secrets);
  const shards = await sourceShards(source);
  const starts: CaptureStartResult[] = [];
  for (const shard of shards) {
    // The RDB full sync takes its start from its own snapshot (FULLRESYNC): nothing to capture before.
    const start: CaptureStartResult =
      reader === 'rdb'
        ? { replid: '', offset: 0, via: 'rdb' }
        : input.spec.incremental.reader === 'notifications'
          ? await notificationStart(shard.endpoint)
          : await captureStart(shard.endpoint);
    starts.push(start);
    await o.store.putShard(
      input.taskId,
      {
        shardId: shard.shardId,
        ...(shard.tag !== undefined
          ? { node: { host: shard.endpoint.host, port: shard.endpoint.port }, tag: shard.tag }
          : {}),
        replid: start.replid,
        startOffset: start.offset,
        appliedOffset: start.offset,
        phase: reader === 'rdb' ? 'rdb-pending' : 'captured',
        ...(reader === 'rdb' ? { rdb: 'pending' as const } : {}),
        updatedAt: new Date().toISOString(),
      },
      undefined,
    );
  }
  await o.store.updateTask(input.taskId, { phase: 'capture-start' });
  return { ...starts[0]!, shards: shards.length, reader };
}

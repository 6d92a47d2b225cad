import type { Redis } from 'ioredis';
import { DtsError } from '../errors.ts';
import { taskEvents } from '../events/task-events.ts';
import { openApplier } from '../incremental/cluster-marker-applier.ts';
import { connectAdmin } from '../redis/admin-client.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { openTargetRouting } from '../redis/target-routing.ts';
import type { TaskStore, UnitCheckpoint } from '../state/task-store.ts';
import { finishCutOver } from './cut-over-state.ts';
import { markerDbFor } from './replicate-step.ts';
import { type SecretValues, stepEndpoints } from './step-endpoints.ts';
import type { TaskStepInput } from './step-types.ts';

export interface CleanupResult {
  keysWritten: number;
  tempKeysRemoved: number;
}

/**
 * The Cleanup state: removes the task's temporary keys (big keys copied in parts leave
 * `redis-dts:tmp:<taskId>:…` only when interrupted) and marks the task succeeded, or failed when the
 * destination refused keys.
 */
export async function cleanupStep(
  input: TaskStepInput,
  o: { store: TaskStore; secrets?: SecretValues },
): Promise<CleanupResult> {
  const { spec, taskId } = input;
  const { target } = stepEndpoints(spec, o.secrets);
  const units = (await o.store.listCheckpoints(taskId)).map((c) => c.value);
  const tgt = await connectAdmin(target);
  let tempKeysRemoved = 0;
  let stopped = false;
  try {
    // Temporary keys exist only where keys were copied in parts; scanning a whole destination for
    // them costs as much as a second SCAN of the data, so dbs without such keys are not scanned.
    for (const db of new Set(units.filter((u) => u.keysInParts > 0).map((u) => u.targetDb))) {
      tempKeysRemoved += await removeTempKeys(tgt, db, `redis-dts:tmp:${taskId}:`);
    }
    if (spec.syncType !== 'full') {
      const shards = (await o.store.listShards(taskId)).map((s) => s.value);
      const shardIds = shards.map((s) => s.shardId);
      stopped = shards.some((s) => s.phase === 'stopped');
      await removeMarkers(target, taskId, spec, units, shardIds);
    }
  } finally {
    await tgt.quit().catch(() => tgt.disconnect());
  }
  const keysWritten = units.reduce((n, u) => n + u.keysWritten, 0);
  const keysFailed = units.reduce((n, u) => n + u.keysFailed, 0);
  const bytes = units.reduce((n, u) => n + u.bytes, 0);
  if (keysFailed > 0) {
    throw new DtsError(
      'KEYS_FAILED',
      `${keysFailed} key(s) could not be written to the destination`,
      'run the same task locally (redis-dts sync) to see each key and its cause, fix them and run it again',
    );
  }
  await o.store.updateTask(taskId, {
    status: 'succeeded',
    phase: 'done',
    progress: { keysWritten, bytes },
    lastError: undefined,
  });
  // How the task ended, as an event: cut over, stopped during incremental sync, or done by itself.
  const events = taskEvents(spec);
  const cutOver = await finishCutOver(o.store, taskId);
  if (cutOver) await events.emit('Task Cut Over', { taskId, ...cutOver });
  else if (stopped) await events.emit('Task Stopped', { taskId, phase: 'incremental' });
  else await events.emit('Task Succeeded', { taskId, keysWritten });
  return { keysWritten, tempKeysRemoved };
}

/** The incremental sync's marker and skip hash: they mean nothing once the task has ended. */
async function removeMarkers(
  target: RedisEndpoint,
  taskId: string,
  spec: TaskStepInput['spec'],
  units: UnitCheckpoint[],
  shardIds: string[],
): Promise<void> {
  const routing = await openTargetRouting(target);
  for (const shardId of shardIds) {
    const applier = await openApplier(target, routing, {
      taskId,
      shardId,
      markerDb: markerDbFor(spec, units),
    });
    try {
      await applier.removeMarker();
    } finally {
      await applier.close();
    }
  }
}

async function removeTempKeys(client: Redis, db: number, prefix: string): Promise<number> {
  await client.select(db);
  let removed = 0;
  let cursor = '0';
  do {
    const [next, keys] = await client.scanBuffer(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = String(next);
    if (keys.length > 0) removed += await client.unlink(...keys);
  } while (cursor !== '0');
  return removed;
}

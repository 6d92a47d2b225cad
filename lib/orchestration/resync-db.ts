import { targetDbFor } from '../commands/key-filter.ts';
import { copyUnit, type FullSyncUnit, freshProgress } from '../fullsync/copy-unit.ts';
import { shardFlush } from '../incremental/slot-flush.ts';
import type { ProgressSink } from '../progress/progress-reporter.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import type { UnitCopyContext } from './unit-copy-context.ts';

/**
 * The catch-up's answer to a db changed as a whole (FLUSHDB, FLUSHALL, SWAPDB): empty the destination's
 * share of the source db and copy it again; resolves with the copy's largest stamp (the new bound).
 * A standalone source's share is the whole destination db (FLUSHDB on every destination node). A cluster
 * source shard's share is the keys of its slots, which are removed key by key (the other shards' keys in
 * the same db stay, and their streams keep writing them), and the copy reads that shard's master alone.
 */
export async function resyncDb(o: {
  sourceDb: number;
  copy: UnitCopyContext;
  dbMap: Readonly<Record<number, number>> | undefined;
  keep: (key: Buffer) => boolean;
  progress: ProgressSink;
  /** A cluster source: the shard, where its master is now, and nodes to read the slot map from. */
  shard?: {
    shardId: string;
    /** The shard's master now (after a failover). */
    resolveSource: () => Promise<RedisEndpoint>;
    node: { host: string; port: number };
    via: RedisEndpoint[];
  };
  log?: (message: string) => void;
}): Promise<number> {
  const { copy, sourceDb } = o;
  const targetDb = targetDbFor(o.dbMap, sourceDb);
  const shard = o.shard;
  const unit: FullSyncUnit = shard
    ? {
        unitId: `resync-${shard.shardId}-db${sourceDb}`,
        sourceDb,
        targetDb,
        shardId: shard.shardId,
        sourceNode: shard.node,
      }
    : { unitId: `resync-db${sourceDb}`, sourceDb, targetDb };
  if (shard) {
    const flush = shardFlush({
      shardId: shard.shardId,
      sourceNodes: () => shard.via,
      routing: copy.routing,
      keep: o.keep,
    });
    const r = await flush(targetDb);
    o.log?.(
      `catch-up: removed ${r.removed} keys of the shard's ${r.slots} slots from destination db ${targetDb}`,
    );
  } else {
    for (const n of copy.routing.nodes) {
      const conn = await RawConnection.open(n, { db: targetDb, clientName: 'redis-dts-resync' });
      try {
        await conn.call(['FLUSHDB']);
      } finally {
        await conn.close();
      }
    }
  }
  const options = copy.copyOptions(unit, o.progress);
  const shardSource = shard ? await shard.resolveSource() : undefined;
  const shardCopier = shardSource ? copy.oversizedCopier(unit, o.progress, shardSource) : undefined;
  const outcome = await copyUnit({
    ...options,
    // The context was opened on the task's source URL: a shard is read from its own master, big keys too.
    ...(shardSource
      ? {
          source: shardSource,
          copyInParts: (key: Buffer) => shardCopier!.copy(key, 'after'),
          dbHasExpiringKeys: true,
        }
      : {}),
    from: freshProgress(),
  });
  return outcome.progress.stamp?.offset ?? 0;
}

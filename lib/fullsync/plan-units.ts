import { targetDbFor } from '../commands/key-filter.ts';
import type { FullSyncUnit } from './copy-unit.ts';

/** A cluster source: one unit per master (db 0, the only one), read from that master. */
export function clusterUnits(
  shards: readonly { shardId: string; endpoint: { host: string; port: number } }[],
  dbMap?: Readonly<Record<number, number>>,
): FullSyncUnit[] {
  return shards.map((s) => ({
    unitId: `${s.shardId}-db0`,
    sourceDb: 0,
    targetDb: targetDbFor(dbMap, 0),
    shardId: s.shardId,
    sourceNode: { host: s.endpoint.host, port: s.endpoint.port },
  }));
}

/**
 * The full sync's units: one per selected source db (a cluster source will add the shard). Without
 * an explicit selection, every db the source reports keys for, in order.
 */
export function planUnits(o: {
  keyspace: Record<number, { keys: number }>;
  dbs?: readonly number[];
  dbMap?: Readonly<Record<number, number>>;
}): FullSyncUnit[] {
  const dbs =
    o.dbs && o.dbs.length > 0
      ? [...o.dbs].sort((a, b) => a - b)
      : Object.keys(o.keyspace)
          .map(Number)
          .filter((db) => (o.keyspace[db]?.keys ?? 0) > 0)
          .sort((a, b) => a - b);
  return dbs.map((db) => ({ unitId: `db${db}`, sourceDb: db, targetDb: targetDbFor(o.dbMap, db) }));
}

import { SourceSlotMoves } from '../incremental/source-slot-moves.ts';
import { readClusterTopology, shardIdOf } from '../redis/cluster-topology.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import type { ShardCheckpoint, Versioned } from '../state/task-store.ts';
import { sourceAt } from './source-shards.ts';

/**
 * The slot map every shard of a cluster source follows moves against: read now from the first shard's
 * master, each master named by the shard whose checkpoint was taken on it (its address). Undefined for
 * a standalone source.
 */
export async function openSlotMoves(
  source: RedisEndpoint,
  shards: readonly Versioned<ShardCheckpoint>[],
  log: (m: string) => void,
): Promise<SourceSlotMoves | undefined> {
  const first = shards[0]?.value.node;
  if (!first) return undefined;
  const topology = await readClusterTopology(sourceAt(source, first));
  const byAddress = new Map(
    shards.flatMap((s) =>
      s.value.node ? [[`${s.value.node.host}:${s.value.node.port}`, s.value.shardId]] : [],
    ),
  );
  return new SourceSlotMoves(
    topology,
    (i) => {
      const m = topology.masters[i]!;
      // After a failover between runs the shard's master is its former replica: its slots name it still.
      const id = byAddress.get(`${m.endpoint.host}:${m.endpoint.port}`) ?? shardIdOf(m);
      return shards.some((s) => s.value.shardId === id) ? id : undefined;
    },
    log,
  );
}

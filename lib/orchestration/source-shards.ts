import { DtsError } from '../errors.ts';
import { tagForSlots } from '../redis/cluster-slot.ts';
import { readClusterTopology, readClusterTopologyFromAny, shardIdOf } from '../redis/cluster-topology.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { isClusterNode } from '../redis/target-routing.ts';

/** Standalone sources have one shard. */
export const STANDALONE_SHARD_ID = '0';

/**
 * One replication stream of the source: a standalone server, or one master of a cluster with the slots
 * it serves. Each shard has its own start offset, full-sync units, marker and heartbeat.
 */
export interface SourceShard {
  shardId: string;
  endpoint: RedisEndpoint;
  /** Cluster only: a hash tag on one of the shard's slots (its heartbeat key carries it). */
  tag?: string;
  /** Cluster only: whether the shard served this slot when the layout was read. */
  ownsSlot?: (slot: number) => boolean;
}

/** The source's shards, read now (a cluster's masters from CLUSTER SLOTS). */
export async function sourceShards(source: RedisEndpoint): Promise<SourceShard[]> {
  if (!(await isClusterNode(source))) return [{ shardId: STANDALONE_SHARD_ID, endpoint: source }];
  const topology = await readClusterTopology(source);
  return topology.masters.map((m, index) => ({
    shardId: shardIdOf(m),
    endpoint: m.endpoint,
    tag: tagForSlots((slot) => topology.slotOwner[slot] === index),
    ownsSlot: (slot: number) => topology.slotOwner[slot] === index,
  }));
}

/**
 * The master serving a cluster shard now, asked of the first of `via` that answers (after a failover the
 * old master may be down): the master whose first slot range is the shard's.
 */
export async function shardMaster(shardId: string, via: readonly RedisEndpoint[]): Promise<RedisEndpoint> {
  const topology = await readClusterTopologyFromAny(via);
  const master = topology.masters.find((m) => shardIdOf(m) === shardId);
  if (master) return master.endpoint;
  // The shard's first slots moved to another master (the source was resharded): still its master.
  const here = via[0];
  const same = topology.masters.find(
    (m) => here && m.endpoint.host === here.host && m.endpoint.port === here.port,
  );
  if (same) return same.endpoint;
  throw new DtsError(
    'SHARD_NOT_FOUND',
    `no master of the source cluster serves ${shardId} any more (the slots were moved)`,
    'run the task again with a fresh full sync: resharding the source during a task is not followed',
  );
}

/**
 * The source as one of its cluster's masters (a unit's `sourceNode`, a shard checkpoint's `node`): same
 * credentials and TLS, that master's address; the source itself when there is none.
 */
export function sourceAt(
  source: RedisEndpoint,
  node: { host: string; port: number } | undefined,
): RedisEndpoint {
  return node ? { ...source, host: node.host, port: node.port } : source;
}

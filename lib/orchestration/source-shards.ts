import type { FullSyncUnit } from '../fullsync/copy-unit.ts';
import { tagForSlots } from '../redis/cluster-slot.ts';
import { readClusterTopology, shardIdOf } from '../redis/cluster-topology.ts';
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
}

/** The source's shards, read now (a cluster's masters from CLUSTER SLOTS). */
export async function sourceShards(source: RedisEndpoint): Promise<SourceShard[]> {
  if (!(await isClusterNode(source))) return [{ shardId: STANDALONE_SHARD_ID, endpoint: source }];
  const topology = await readClusterTopology(source);
  return topology.masters.map((m) => {
    const index = topology.masters.indexOf(m);
    return {
      shardId: shardIdOf(m),
      endpoint: m.endpoint,
      tag: tagForSlots((slot) => topology.slotOwner[slot] === index),
    };
  });
}

/** Where a unit's keys are read: its shard's master, or the source itself. */
export function unitSource(source: RedisEndpoint, unit: FullSyncUnit): RedisEndpoint {
  return unit.sourceNode ? { ...source, host: unit.sourceNode.host, port: unit.sourceNode.port } : source;
}

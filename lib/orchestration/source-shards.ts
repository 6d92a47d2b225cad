import { DtsError } from '../errors.ts';
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

/**
 * The master serving a cluster shard now, asked of the first of `via` that answers (after a failover the
 * old master may be down): the master whose first slot range is the shard's.
 */
export async function shardMaster(shardId: string, via: readonly RedisEndpoint[]): Promise<RedisEndpoint> {
  let last: unknown;
  for (const ep of via) {
    try {
      const topology = await readClusterTopology(ep);
      const master = topology.masters.find((m) => shardIdOf(m) === shardId);
      if (master) return master.endpoint;
      last = new DtsError(
        'SHARD_NOT_FOUND',
        `no master of the source cluster serves ${shardId} any more (the slots were moved)`,
        'run the task again with a fresh full sync: resharding the source during a task is not followed',
      );
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

/** Where a unit's keys are read: its shard's master, or the source itself. */
export function unitSource(source: RedisEndpoint, unit: FullSyncUnit): RedisEndpoint {
  return unit.sourceNode ? { ...source, host: unit.sourceNode.host, port: unit.sourceNode.port } : source;
}

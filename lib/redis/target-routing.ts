import { keySlot } from './cluster-slot.ts';
import {
  type ClusterTopology,
  describeTopology,
  readClusterTopology,
  readClusterTopologyFromAny,
} from './cluster-topology.ts';
import type { RedisEndpoint } from './endpoint.ts';
import { RawConnection } from './raw-connection.ts';

/**
 * Where the destination's writes go: its one server, or every master of a cluster, each owning the keys
 * of its slots. Writers keep one connection per node and send each key to `nodeOf(key)`.
 */
export interface TargetRouting {
  readonly nodes: readonly RedisEndpoint[];
  /** The cluster's layout; undefined for a standalone destination. */
  readonly topology: ClusterTopology | undefined;
  /** Index in `nodes` of the node that holds `key`. */
  nodeOf(key: Buffer): number;
  /** Index in `nodes` of the node that serves `slot`. */
  nodeOfSlot(slot: number): number;
  describe(): string;
}

export function standaloneRouting(target: RedisEndpoint): TargetRouting {
  return {
    nodes: [target],
    topology: undefined,
    nodeOf: () => 0,
    nodeOfSlot: () => 0,
    describe: () => 'standalone',
  };
}

export function clusterRouting(topology: ClusterTopology): TargetRouting {
  return {
    nodes: topology.masters.map((m) => m.endpoint),
    topology,
    nodeOf: (key) => topology.slotOwner[keySlot(key)]!,
    nodeOfSlot: (slot) => topology.slotOwner[slot]!,
    describe: () => `cluster, ${describeTopology(topology)}`,
  };
}

/** Asks the destination whether it runs in cluster mode, and if so reads its slot map. */
export async function openTargetRouting(target: RedisEndpoint): Promise<TargetRouting> {
  return (await isClusterNode(target))
    ? clusterRouting(await readClusterTopology(target))
    : standaloneRouting(target);
}

/**
 * A cluster destination's slot map read again after a node refused a key or went away: asked of the URL's
 * node first, then of every master known before (the URL's node may be the one that failed).
 */
export async function refreshClusterRouting(
  target: RedisEndpoint,
  before: TargetRouting,
): Promise<TargetRouting> {
  return clusterRouting(await readClusterTopologyFromAny([target, ...before.nodes]));
}

export async function isClusterNode(ep: RedisEndpoint): Promise<boolean> {
  const conn = await RawConnection.open(ep, { clientName: 'redis-dts-layout' });
  try {
    const reply = await conn.call(['INFO', 'cluster']);
    const text = Buffer.isBuffer(reply) ? reply.toString('latin1') : String(reply);
    return /^cluster_enabled:1\r?$/m.test(text);
  } finally {
    await conn.close().catch(() => conn.destroy());
  }
}

import { DtsError } from '../errors.ts';
import { classifyRedisError } from './classify-error.ts';
import { SLOT_COUNT } from './cluster-slot.ts';
import { describeEndpoint, type RedisEndpoint } from './endpoint.ts';
import { RawConnection } from './raw-connection.ts';
import { RespError, type RespValue } from './resp.ts';

export interface ClusterNode {
  id: string;
  endpoint: RedisEndpoint;
}

export interface ClusterMaster extends ClusterNode {
  /** Inclusive slot ranges, ascending. */
  ranges: [number, number][];
  replicas: ClusterNode[];
}

export interface ClusterTopology {
  masters: ClusterMaster[];
  /** master index per slot */
  slotOwner: Int16Array;
  ownerOf(slot: number): ClusterMaster;
}

/**
 * Reads the slot map from one node with CLUSTER SLOTS. Every node gets the seed's credentials and TLS
 * settings: a cluster shares them, and the user gave only the seed's URL.
 */
/**
 * The slot map read from the first of `nodes` that answers: after a failover or while a node is down, any
 * reachable node of the cluster knows it. Throws the last failure when none answers.
 */
export async function readClusterTopologyFromAny(nodes: readonly RedisEndpoint[]): Promise<ClusterTopology> {
  let last: unknown = new Error('no cluster node to ask');
  for (const ep of nodes) {
    try {
      return await readClusterTopology(ep);
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

export async function readClusterTopology(seed: RedisEndpoint): Promise<ClusterTopology> {
  const conn = await RawConnection.open(seed, { clientName: 'redis-dts' });
  let reply: RespValue;
  try {
    reply = await conn.call(['CLUSTER', 'SLOTS']);
  } catch (e) {
    if (e instanceof RespError && /cluster support disabled/i.test(e.message)) {
      throw new DtsError(
        'NOT_A_CLUSTER',
        `${describeEndpoint(seed)} is not a cluster node (cluster support disabled)`,
        `point the ${seed.role} at a Redis Cluster node, or treat it as a standalone server`,
      );
    }
    throw classifyRedisError(e, seed, 'CLUSTER SLOTS');
  } finally {
    conn.destroy();
  }
  return buildTopology(seed, reply);
}

function buildTopology(seed: RedisEndpoint, reply: RespValue): ClusterTopology {
  const bad = (what: string) =>
    new DtsError(
      'PROTOCOL',
      `${describeEndpoint(seed)}: CLUSTER SLOTS reply ${what}`,
      'report a bug with the Redis version and vendor',
    );
  if (!Array.isArray(reply)) throw bad('is not an array');

  const byId = new Map<string, ClusterMaster>();
  for (const entry of reply) {
    if (!Array.isArray(entry) || entry.length < 3)
      throw bad('has an entry that is not [start, end, master, …]');
    const [start, end, masterInfo, ...replicaInfos] = entry;
    if (typeof start !== 'number' || typeof end !== 'number' || start < 0 || end < start || end >= SLOT_COUNT)
      throw bad(`has an invalid slot range ${String(start)}-${String(end)}`);
    const node = parseNode(seed, masterInfo, bad);
    let master = byId.get(node.id);
    if (!master) {
      master = { ...node, ranges: [], replicas: replicaInfos.map((r) => parseNode(seed, r, bad)) };
      byId.set(node.id, master);
    }
    master.ranges.push([start, end]);
  }

  const masters = [...byId.values()];
  for (const m of masters) m.ranges.sort((a, b) => a[0] - b[0]);
  // Array#sort is stable: masters with equal first slots (impossible in a valid map) keep reply order.
  masters.sort((a, b) => a.ranges[0]![0] - b.ranges[0]![0]);

  const slotOwner = new Int16Array(SLOT_COUNT).fill(-1);
  masters.forEach((m, index) => {
    for (const [start, end] of m.ranges) slotOwner.fill(index, start, end + 1);
  });
  const unassigned = slotOwner.reduce((n, owner) => (owner < 0 ? n + 1 : n), 0);
  if (unassigned > 0) {
    throw new DtsError(
      'CLUSTER_INCOMPLETE',
      `${unassigned} of ${SLOT_COUNT} slots have no master (first: ${slotOwner.indexOf(-1)})`,
      `wait until every slot is assigned and served (CLUSTER INFO on ${describeEndpoint(seed)} shows cluster_state:ok), then retry`,
    );
  }
  return { masters, slotOwner, ownerOf: (slot) => masters[slotOwner[slot]!]! };
}

function parseNode(
  seed: RedisEndpoint,
  info: RespValue | undefined,
  bad: (what: string) => DtsError,
): ClusterNode {
  if (!Array.isArray(info) || info.length < 3) throw bad('has a node that is not [host, port, id, …]');
  const [hostValue, port, idValue] = info;
  if (typeof port !== 'number' || port <= 0) throw bad(`has a node with port ${String(port)}`);
  const host = text(hostValue);
  const id = text(idValue);
  if (!id) throw bad('has a node without an id');
  // An empty host means "the address you reached me on" (a node that never learned its own IP).
  return { id, endpoint: { ...seed, host: host || seed.host, port } };
}

function text(v: RespValue | undefined): string {
  return Buffer.isBuffer(v) || typeof v === 'string' ? v.toString() : '';
}

/** `3 masters: 127.0.0.1:7000 (slots 0-5460, 1 replica), …`: safe to print (no credentials). */
export function describeTopology(t: ClusterTopology): string {
  const nodes = t.masters.map((m) => {
    const slots = m.ranges.map(([s, e]) => (s === e ? `${s}` : `${s}-${e}`)).join(',');
    return `${hostPort(m.endpoint)} (slots ${slots}, ${plural(m.replicas.length, 'replica')})`;
  });
  return `${plural(t.masters.length, 'master')}: ${nodes.join(', ')}`;
}

/** Names a shard by the slots it serves, which survive a failover (node ids and addresses do not). */
export function shardIdOf(m: ClusterMaster): string {
  const [start, end] = m.ranges[0]!;
  return `slots${start}-${end}`;
}

function hostPort(ep: RedisEndpoint): string {
  return `${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${ep.port}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

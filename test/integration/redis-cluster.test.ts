import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DtsError } from '../../lib/errors.ts';
import { keySlot } from '../../lib/redis/cluster-slot.ts';
import {
  type ClusterTopology,
  describeTopology,
  readClusterTopology,
  shardIdOf,
} from '../../lib/redis/cluster-topology.ts';
import { RawConnection } from '../../lib/redis/raw-connection.ts';
import { RespError } from '../../lib/redis/resp.ts';
import { parseRedisUrl } from '../../lib/redis/url.ts';
import { failure } from '../support/failure.ts';
import { type RedisClusterProcess, startRedisCluster } from '../support/redis-cluster.ts';
import { type RedisProcess, startRedis } from '../support/redis-server.ts';

const PASSWORD = 'Clu5ter-S3cret';

/** Random binary keys, a third of them with a hash tag somewhere inside. */
function randomKeys(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => {
    const plain = randomBytes(i % 24);
    if (i % 3 !== 0) return plain;
    return Buffer.concat([randomBytes(i % 5), Buffer.from('{'), randomBytes(i % 4), Buffer.from('}'), plain]);
  });
}

describe('Redis Cluster topology against a real cluster', () => {
  let cluster: RedisClusterProcess;
  let secured: RedisClusterProcess;
  let plain: RedisProcess;
  let lone: RedisProcess;
  let topology: ClusterTopology;
  const connections: RawConnection[] = [];
  const open = async (url: string) => {
    const c = await RawConnection.open(parseRedisUrl(url, 'target'));
    connections.push(c);
    return c;
  };

  beforeAll(async () => {
    [cluster, secured, plain, lone] = await Promise.all([
      startRedisCluster({ masters: 3, replicasPerMaster: 1 }),
      startRedisCluster({ masters: 1, replicasPerMaster: 1, password: PASSWORD }),
      startRedis(),
      startRedis({ args: ['--cluster-enabled', 'yes'] }),
    ]);
    topology = await readClusterTopology(parseRedisUrl(cluster.url, 'source'));
  });

  afterAll(async () => {
    for (const c of connections) c.destroy();
    await Promise.all([cluster?.stop(), secured?.stop(), plain?.stop(), lone?.stop()]);
  });

  it('finds every master in slot order, with its replica, covering all 16384 slots', async () => {
    const ids = await Promise.all(cluster.nodes.map((n) => n.cli('CLUSTER', 'MYID')));
    const idOf = new Map(cluster.nodes.map((n, i) => [n.port, ids[i]]));
    expect(
      topology.masters.map((m) => ({
        id: m.id,
        host: m.endpoint.host,
        port: m.endpoint.port,
        replicas: m.replicas.map((r) => [r.id, r.endpoint.host, r.endpoint.port]),
      })),
    ).toEqual(
      cluster.masters.map((m, i) => ({
        id: idOf.get(m.port),
        host: '127.0.0.1',
        port: m.port,
        replicas: [[idOf.get(cluster.replicas[i]!.port), '127.0.0.1', cluster.replicas[i]!.port]],
      })),
    );
    const covered = topology.masters.flatMap((m) => m.ranges).reduce((n, [s, e]) => n + e - s + 1, 0);
    expect(covered).toBe(16384);
    expect(topology.slotOwner.every((owner) => owner >= 0 && owner < 3)).toBe(true);
    expect(topology.ownerOf(0)).toBe(topology.masters[0]);
    expect(topology.ownerOf(16383)).toBe(topology.masters[2]);
    for (const m of topology.masters) expect(m.endpoint.role).toBe('source');
  });

  it('reads the same map from a replica as from a master', async () => {
    const fromReplica = await readClusterTopology(parseRedisUrl(cluster.replicas[1]!.url, 'source'));
    expect(describeTopology(fromReplica)).toBe(describeTopology(topology));
    expect(Buffer.from(fromReplica.slotOwner.buffer)).toEqual(Buffer.from(topology.slotOwner.buffer));
  });

  it('computes the same slot as CLUSTER KEYSLOT for random binary keys', async () => {
    const conn = await open(cluster.masters[0]!.url);
    const keys = randomKeys(200);
    const replies = await conn.pipeline(keys.map((k) => ['CLUSTER', 'KEYSLOT', k]));
    expect(keys.map(keySlot)).toEqual(replies);
  });

  it('writes through the owner of a key, and is redirected with MOVED by any other master', async () => {
    const key = 'cluster-test:key';
    const owner = topology.ownerOf(keySlot(key));
    const other = topology.masters.find((m) => m !== owner)!;
    const toOwner = await open(cluster.masters.find((m) => m.port === owner.endpoint.port)!.url);
    const toOther = await open(cluster.masters.find((m) => m.port === other.endpoint.port)!.url);
    expect(await toOwner.call(['SET', key, 'v'])).toBe('OK');
    const moved = await failure(toOther.call(['SET', key, 'w']));
    expect(moved).toBeInstanceOf(RespError);
    expect((moved as RespError).message).toBe(`MOVED ${keySlot(key)} 127.0.0.1:${owner.endpoint.port}`);
    expect(await toOwner.call(['GET', key])).toEqual(Buffer.from('v'));
  });

  it('describes the topology on one line and names shards by their first slot range', () => {
    const [a, b, c] = cluster.masters.map((m) => m.port);
    expect(describeTopology(topology)).toBe(
      `3 masters: 127.0.0.1:${a} (slots 0-5460, 1 replica), 127.0.0.1:${b} (slots 5461-10921, 1 replica), ` +
        `127.0.0.1:${c} (slots 10922-16383, 1 replica)`,
    );
    expect(topology.masters.map(shardIdOf)).toEqual(['slots0-5460', 'slots5461-10921', 'slots10922-16383']);
  });

  it('refuses a server without cluster support with NOT_A_CLUSTER', async () => {
    const err = await failure(readClusterTopology(parseRedisUrl(plain.url, 'target')));
    expect(err).toBeInstanceOf(DtsError);
    expect((err as DtsError).code).toBe('NOT_A_CLUSTER');
  });

  it('refuses a cluster whose slots are not all assigned with CLUSTER_INCOMPLETE', async () => {
    expect(await lone.cli('CLUSTER', 'ADDSLOTSRANGE', '0', '100')).toBe('OK');
    const err = await failure(readClusterTopology(parseRedisUrl(lone.url, 'target')));
    expect(err).toBeInstanceOf(DtsError);
    expect((err as DtsError).code).toBe('CLUSTER_INCOMPLETE');
    expect((err as DtsError).message).toBe('16283 of 16384 slots have no master (first: 101)');
    expect((err as DtsError).fix).toContain('cluster_state:ok');
  });

  it('logs in to a password-protected cluster and gives every node the same credentials', async () => {
    const seed = parseRedisUrl(secured.url, 'source');
    expect(seed.password).toBe(PASSWORD);
    const t = await readClusterTopology(seed);
    expect(describeTopology(t)).toBe(
      `1 master: 127.0.0.1:${secured.masters[0]!.port} (slots 0-16383, 1 replica)`,
    );
    const replica = t.masters[0]!.replicas[0]!.endpoint;
    expect(replica).toEqual({ ...seed, port: secured.replicas[0]!.port });
    const conn = await RawConnection.open(replica);
    connections.push(conn);
    expect(await conn.call(['ROLE'])).toContainEqual(Buffer.from('slave'));

    const noPassword = await failure(readClusterTopology({ ...seed, password: undefined }));
    expect(noPassword).toBeInstanceOf(DtsError);
    expect((noPassword as DtsError).message).not.toContain(PASSWORD);
  });
});

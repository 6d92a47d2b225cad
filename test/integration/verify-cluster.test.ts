import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DtsError } from '../../lib/errors.ts';
import { keySlot } from '../../lib/redis/cluster-slot.ts';
import { readClusterTopology } from '../../lib/redis/cluster-topology.ts';
import { parseRedisUrl } from '../../lib/redis/url.ts';
import { resolveEndpoint } from '../../lib/task/resolve-endpoint.ts';
import { parseTaskSpec } from '../../lib/task/spec.ts';
import { keyLabel } from '../../lib/verify/describe.ts';
import { verifyTask } from '../../lib/verify/verify-task.ts';
import type { DifferenceCategory, VerifyOptions, VerifyReport } from '../../lib/verify/verify-types.ts';
import { runCli } from '../support/cli.ts';
import { failure } from '../support/failure.ts';
import { type RedisClusterProcess, startRedisCluster } from '../support/redis-cluster.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { verifyUrls } from '../support/verify.ts';

const PASSWORD = 'Verify-Clu5ter';
const EXPIRE_AT = Date.UTC(2100, 0, 1, 0, 0, 0, 123);
const GROUPS = 60;

let standalone: RedisProcess;
let three: RedisClusterProcess;
let two: RedisClusterProcess;
/** Keys written to every side. */
let keyCount = 0;

function binaryKey(i: number): Buffer {
  return Buffer.from([0xff, 0x00, i, 0x80, 0x0a]);
}

/**
 * The same keys on every side, written one command per key so that a cluster client can route each:
 * every core type, absolute expiries, binary keys, hash tags, a stream with a group and a big hash.
 */
async function fill(c: Redis | Cluster): Promise<number> {
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < GROUPS; i++) {
    writes.push(c.set(`str:${i}`, `value-${i}-`.repeat((i % 5) + 1)));
    writes.push(
      c.hset(`hash:${i}`, ...Array.from({ length: (i % 7) + 1 }, (_, f) => [`f${f}`, `v${i}.${f}`]).flat()),
    );
    writes.push(c.rpush(`list:${i}`, ...Array.from({ length: (i % 6) + 1 }, (_, e) => `e${e}`)));
    writes.push(c.sadd(`set:${i}`, ...Array.from({ length: (i % 9) + 1 }, (_, m) => `m${m}`)));
    writes.push(
      c.zadd(`zset:${i}`, ...Array.from({ length: (i % 4) + 1 }, (_, m) => [m * 1.5, `z${m}`]).flat()),
    );
    writes.push(c.set(`{user${i % 7}}:profile:${i}`, `profile ${i}`));
    writes.push(c.set(binaryKey(i), Buffer.from([i, 0x00, 0xff])));
    writes.push(c.set(`ttl:${i}`, `t${i}`).then(() => c.pexpireat(`ttl:${i}`, EXPIRE_AT + i)));
  }
  writes.push(c.sadd('set:big', ...Array.from({ length: 300 }, (_, m) => `member:${m}`)));
  writes.push(
    c.hset('hash:big', ...Array.from({ length: 3000 }, (_, f) => [`field:${f}`, 'x'.repeat(100)]).flat()),
  );
  await Promise.all(writes);
  await c.xadd('stream:0', '1-1', 'a', '1');
  await c.xadd('stream:0', '2-1', 'b', '2');
  await c.xgroup('CREATE', 'stream:0', 'readers', '0');
  return GROUPS * 8 + 3;
}

function clusterClient(c: RedisClusterProcess, password?: string): Cluster {
  return new Cluster(
    c.masters.map((m) => ({ host: m.host, port: m.port })),
    { redisOptions: { ...(password ? { password } : {}), maxRetriesPerRequest: 0 } },
  );
}

async function fillWith(client: Redis | Cluster): Promise<number> {
  try {
    return await fill(client);
  } finally {
    client.disconnect();
  }
}

beforeAll(async () => {
  [standalone, three, two] = await Promise.all([
    startRedis(),
    startRedisCluster({ masters: 3 }),
    startRedisCluster({ masters: 2, password: PASSWORD }),
  ]);
  const counts = await Promise.all([
    fillWith(new Redis(standalone.url, { maxRetriesPerRequest: 0 })),
    fillWith(clusterClient(three)),
    fillWith(clusterClient(two, PASSWORD)),
  ]);
  keyCount = counts[0];
  // The standalone server holds every key, so its DBSIZE is the count each side must have.
  expect(Number(await standalone.cli('DBSIZE'))).toBe(keyCount);
}, 120_000);

afterAll(async () => {
  await Promise.all([three?.stop(), two?.stop()]);
  await stopAllRedis();
});

function verifyTaskBetween(source: string, target: string, rounds = 1): Promise<VerifyReport> {
  const spec = parseTaskSpec(
    { source: { url: source }, target: { url: target }, verify: { rounds } },
    { mode: 'local' },
  );
  return verifyTask({
    spec,
    source: resolveEndpoint(spec.source, 'source'),
    target: resolveEndpoint(spec.target, 'target'),
    roundDelayMs: 0,
    maxExamples: 50,
  });
}

function differences(r: VerifyReport): Record<DifferenceCategory, string[]> {
  const out = {} as Record<DifferenceCategory, string[]>;
  for (const [c, report] of Object.entries(r.categories))
    out[c as DifferenceCategory] = [...report.examples].sort();
  return out;
}

const PATHS: { name: string; options: Partial<VerifyOptions> }[] = [
  { name: 'DUMP payloads', options: {} },
  { name: 'values as data', options: { dumpPayloads: false } },
  { name: 'every key in pages', options: { bigKeyBytes: 0 } },
];

describe('verify with a cluster on either side, same data', () => {
  for (const path of PATHS) {
    it(`standalone → 3-master cluster finds no difference (${path.name})`, async () => {
      const r = await verifyUrls(standalone.url, three.url, path.options);
      expect(differences(r)).toEqual({ missing: [], extra: [], type: [], value: [], ttl: [] });
      expect(r.consistent).toBe(true);
      expect(r.keysCompared).toBe(keyCount);
      // The search for extra keys covered every master of the destination.
      expect(r.keysScannedOnTarget).toBe(keyCount);
    });
  }

  it('3-master cluster → standalone finds no difference', async () => {
    const r = await verifyUrls(three.url, standalone.url, { bigKeyBytes: 1000 });
    expect(r.consistent).toBe(true);
    expect(r.keysCompared).toBe(keyCount);
    expect(r.keysScannedOnTarget).toBe(keyCount);
  });

  it('3-master cluster → 2-master cluster (with a password) finds no difference, through verifyTask', async () => {
    const r = await verifyTaskBetween(three.url, two.url);
    expect(r.units.map((u) => [u.sourceDb, u.targetDb])).toEqual([[0, 0]]);
    expect(r.consistent).toBe(true);
    expect(r.keysCompared).toBe(keyCount);
    expect(r.keysScannedOnTarget).toBe(keyCount);
  });

  for (const mode of ['length', 'exists'] as const) {
    it(`cluster → cluster finds no difference in ${mode} mode`, async () => {
      const r = await verifyUrls(two.url, three.url, { mode });
      expect(r.consistent).toBe(true);
      expect(r.keysCompared).toBe(keyCount);
    });
  }

  it('the CLI verifies a standalone server against a cluster and exits 0', async () => {
    const r = await runCli([
      'verify',
      '--source',
      standalone.url,
      '--target',
      three.url,
      '--progress',
      'json',
    ]);
    expect(r.stderr).not.toContain('error:');
    expect(r.stdout).toMatch(new RegExp(`^verify: consistent: ${keyCount} key\\(s\\) compared`));
    expect(r.code).toBe(0);
  });

  it('refuses a db other than 0 on a cluster, naming the fix', async () => {
    const e = await failure(
      verifyUrls(standalone.url, three.url, { units: [{ unitId: 'db1', sourceDb: 1, targetDb: 1 }] }),
    );
    expect(e).toBeInstanceOf(DtsError);
    expect((e as DtsError).code).toBe('CLUSTER_DB');
    expect((e as DtsError).fix).toContain('--db-map N:0');
  });
});

describe('verify with a cluster on either side, planted differences', () => {
  const changed = 'hash:5';
  const deleted = binaryKey(3);
  const added = 'only-on-cluster';
  const retimed = 'ttl:7';
  const label = (key: string | Buffer) => keyLabel(0, 0, Buffer.from(key));

  beforeAll(async () => {
    // Every change is made on the 3-master cluster, so each direction sees it from its own side.
    const c = clusterClient(three);
    try {
      await c.hset(changed, 'f2', 'changed');
      await c.del(deleted);
      await c.set(added, 'x');
      await c.pexpireat(retimed, EXPIRE_AT + 60_000);
    } finally {
      c.disconnect();
    }
  });

  it('the planted keys live on different masters', async () => {
    const topology = await readClusterTopology(parseRedisUrl(three.url, 'target'));
    const owners = [changed, deleted, added, retimed].map(
      (k) => topology.ownerOf(keySlot(Buffer.from(k))).id,
    );
    expect(new Set(owners).size).toBeGreaterThanOrEqual(2);
  });

  for (const path of PATHS) {
    it(`standalone → cluster reports exactly the changes (${path.name})`, async () => {
      const r = await verifyUrls(standalone.url, three.url, { ...path.options, rounds: 2 });
      expect(differences(r)).toEqual({
        missing: [label(deleted)],
        extra: [label(added)],
        type: [],
        value: [label(changed)],
        ttl: [label(retimed)],
      });
      expect(r.keysDiffering).toBe(4);
      expect(r.rounds).toBe(2);
      const i = r.categories.value.examples.indexOf(label(changed));
      expect(r.categories.value.details[i]).toContain('field "f2" differs');
    });
  }

  it('cluster → standalone reports them mirrored', async () => {
    const r = await verifyUrls(three.url, standalone.url, { rounds: 2 });
    expect(differences(r)).toEqual({
      missing: [label(added)],
      extra: [label(deleted)],
      type: [],
      value: [label(changed)],
      ttl: [label(retimed)],
    });
    expect(r.keysDiffering).toBe(4);
  });

  it('cluster → cluster reports them through verifyTask', async () => {
    const r = await verifyTaskBetween(three.url, two.url, 2);
    expect(differences(r)).toEqual({
      missing: [label(added)],
      extra: [label(deleted)],
      type: [],
      value: [label(changed)],
      ttl: [label(retimed)],
    });
    expect(r.consistent).toBe(false);
    // One key deleted from the source, one added to it.
    expect(r.keysCompared).toBe(keyCount);
    expect(r.keysScannedOnTarget).toBe(keyCount);
  });

  it('the CLI exits 1 and names every difference', async () => {
    const r = await runCli([
      'verify',
      '--source',
      standalone.url,
      '--target',
      three.url,
      '--round-delay-ms',
      '0',
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /^verify: INCONSISTENT: 4 key\(s\) differ \(1 missing on the target, 1 extra on the target, 1 value differs, 1 TTL differs\)/,
    );
    expect(r.stdout).toContain(`${label(deleted)}: a string on the source only`);
    expect(r.stdout).toContain(`${label(added)}: a string on the target only`);
    expect(r.stdout).toContain(`${label(retimed)}: expires at 2100-01-01T00:00:00.130Z on the source`);
  });
});

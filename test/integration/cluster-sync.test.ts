import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, SCAN_READER, startCli, syncArgs, watchCli as watch } from '../support/cli.ts';
import { assertSameKeys } from '../support/cluster-compare.ts';
import { type RedisClusterProcess, startRedisCluster } from '../support/redis-cluster.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { seedManyKeys } from '../support/seed.ts';
import { startWriters } from '../support/writers.ts';

const dirs: string[] = [];
const clusters: RedisClusterProcess[] = [];

afterAll(async () => {
  await Promise.all(clusters.map((c) => c.stop()));
  await stopAllRedis();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'redis-dts-cluster-'));
  dirs.push(d);
  return d;
}

async function cluster(o: Parameters<typeof startRedisCluster>[0] = {}): Promise<RedisClusterProcess> {
  const c = await startRedisCluster(o);
  clusters.push(c);
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writers run at full speed for seconds: the default 1 MB backlog would not hold the catch-up. */
const BIG_BACKLOG = ['--repl-backlog-size', '256mb'];

function sync(
  source: string,
  target: string,
  extra: string[] = [],
  state = stateDir(),
): ReturnType<typeof watch> {
  return watch(startCli(syncArgs(source, target, state, ['--until', 'caught-up', ...extra])));
}

/** No redis-dts key (marker, skip hash, heartbeat) is left on any node once the task ended. */
async function assertNoInternalKeys(urls: readonly string[]): Promise<void> {
  for (const url of urls) {
    const c = new Redis(url);
    try {
      expect(await c.keys('redis-dts:*'), `redis-dts keys on ${url}`).toEqual([]);
    } finally {
      c.disconnect();
    }
  }
}

describe('standalone source → cluster destination', () => {
  it('full+incremental under writers with cross-slot commands: every key equal, no CROSSSLOT', async () => {
    const source = await startRedis({ args: BIG_BACKLOG });
    const target = await cluster({ masters: 3 });
    await seedManyKeys(source.url, { db: 0, count: 30_000, mixed: true, prefix: 'seed:' });
    // Untagged key names land in random slots, so RENAME, RPOPLPUSH, MULTI blocks and EVAL span nodes.
    await syncUnderWriters({ source: source.url, target: target.url, clusterWriters: false });
    const masters = target.masters.map((m) => m.url);
    expect(await assertSameKeys([source.url], masters)).toBeGreaterThan(30_000);
    await assertNoInternalKeys([source.url, ...masters]);
    // Every master got its share: the copy was routed, not sent to one node.
    for (const m of target.masters) expect(Number(await m.cli('DBSIZE'))).toBeGreaterThan(5000);
  });
});

/**
 * `sync --until caught-up` while writers run (and `during` happens, or 2 s pass), then the writers stop:
 * the CLI must exit 0 without a CROSSSLOT error. Returns its output.
 */
async function syncUnderWriters(o: {
  source: string;
  target: string;
  clusterWriters: boolean;
  during?: () => Promise<void>;
  state?: string;
  extra?: string[];
}): Promise<string> {
  const writers = startWriters({ url: o.source, dbs: [0], writers: 4, cluster: o.clusterWriters });
  const cli = sync(o.source, o.target, ['--dbs', '0', ...(o.extra ?? [])], o.state);
  await cli.until('incremental sync: applying changes');
  await sleep(500);
  await o.during?.();
  await sleep(1500);
  const stats = await writers.stop();
  expect(stats.ops).toBeGreaterThan(0);
  // Short-lived keys the writers made expire on the source before the comparison.
  await sleep(700);
  const r = await cli.done;
  expect(r.code, cli.output()).toBe(0);
  expect(cli.output()).not.toMatch(/CROSSSLOT/);
  return cli.output();
}

/** Seeds a cluster through a cluster client (keys land on every master). */
async function seedCluster(c: RedisClusterProcess, count: number): Promise<void> {
  const client = new Cluster([{ host: c.masters[0]!.host, port: c.masters[0]!.port }]);
  try {
    for (let i = 0; i < count; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, count - i) }, (_, j) => {
          const n = i + j;
          if (n % 4 === 0) return client.hset(`seed:h:${n}`, 'a', n, 'b', `v${n}`);
          if (n % 4 === 1) return client.rpush(`seed:l:${n}`, 'x', String(n));
          if (n % 4 === 2) return client.set(`seed:s:${n}`, `v${n}`, 'EX', 1000 + n);
          return client.zadd(`seed:z:${n}`, n, 'm');
        }),
      );
    }
  } finally {
    client.disconnect();
  }
}

describe('cluster source', () => {
  it('→ standalone: one stream per master, every key equal', async () => {
    const source = await cluster({ masters: 3, args: BIG_BACKLOG });
    const target = await startRedis();
    await seedCluster(source, 12_000);
    const state = stateDir();
    await syncUnderWriters({
      source: source.url,
      target: target.url,
      clusterWriters: true,
      state,
      extra: [...SCAN_READER],
    });
    const masters = source.masters.map((m) => m.url);
    expect(await assertSameKeys(masters, [target.url])).toBeGreaterThan(12_000);
    await assertNoInternalKeys([target.url, ...masters]);
    // status shows one unit and one stream per master.
    const status = await runCli(['status', '--state-dir', state]);
    expect(status.stdout.match(/^ {2}stream slots\d+-\d+ \(127\.0\.0\.1:\d+\): caught-up/gm)).toHaveLength(3);
    expect(status.stdout.match(/read from 127\.0\.0\.1:\d+/g)).toHaveLength(3);
  });

  it('→ cluster with a different number of masters (3 → 2)', async () => {
    const source = await cluster({ masters: 3, args: BIG_BACKLOG });
    const target = await cluster({ masters: 2 });
    await seedCluster(source, 12_000);
    await syncUnderWriters({ source: source.url, target: target.url, clusterWriters: true });
    const [from, to] = [source.masters.map((m) => m.url), target.masters.map((m) => m.url)];
    expect(await assertSameKeys(from, to)).toBeGreaterThan(12_000);
    await assertNoInternalKeys([...from, ...to]);
  });
});

describe('cluster → cluster, exactly once', () => {
  it('survives kill -9 during the full sync, the catch-up and incremental sync: every key equal', async () => {
    const source = await cluster({ masters: 3, args: BIG_BACKLOG });
    const target = await cluster({ masters: 3 });
    await seedCluster(source, 60_000);
    const state = stateDir();
    const writers = startWriters({ url: source.url, dbs: [0], writers: 3, cluster: true });
    const points: [string, number][] = [
      ['copying', 200],
      ['catch-up: reading', 0],
      ['incremental sync: applying changes', 300],
      ['incremental sync: applying changes', 900],
      ['incremental sync: applying changes', 1500],
    ];
    for (const [line, pause] of points) {
      const cli = sync(source.url, target.url, ['--dbs', '0'], state);
      await cli.until(line);
      await sleep(pause);
      cli.child.kill('SIGKILL');
      const r = await cli.done;
      expect(r.signal, cli.output()).toBe('SIGKILL');
    }
    const stats = await writers.stop();
    expect(stats.ops).toBeGreaterThan(0);
    await sleep(700);
    const cli = sync(source.url, target.url, ['--dbs', '0'], state);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(cli.output()).toContain("from the destination's marker");
    // A cluster destination applies without transactions: what followed the marker was copied again.
    expect(cli.output()).toContain('catch-up: reading the changes after the marker');
    const masters = target.masters.map((m) => m.url);
    expect(
      await assertSameKeys(
        source.masters.map((m) => m.url),
        masters,
      ),
    ).toBeGreaterThan(60_000);
    await assertNoInternalKeys(masters);
  }, 300_000);
});

/** The nodes that are masters now (a failover swaps roles), among those still running. */
async function currentMasters(c: RedisClusterProcess, gone: readonly RedisProcess[] = []): Promise<string[]> {
  const alive = c.nodes.filter((n) => !gone.includes(n));
  const roles = await Promise.all(alive.map(async (n) => ({ n, role: await n.cli('ROLE') })));
  return roles.filter((r) => r.role.startsWith('master')).map((r) => r.n.url);
}

describe('cluster source failover', () => {
  it('a master failover during incremental sync (CLUSTER FAILOVER on its replica) loses nothing', async () => {
    const source = await cluster({ masters: 3, replicasPerMaster: 1, args: BIG_BACKLOG });
    const target = await startRedis();
    await seedCluster(source, 12_000);
    const output = await syncUnderWriters({
      source: source.url,
      target: target.url,
      clusterWriters: true,
      during: async () => {
        expect(await source.replicas[0]!.cli('CLUSTER', 'FAILOVER')).toBe('OK');
        // The replica takes over within a few hundred ms; the writers follow MOVED to it.
        for (let i = 0; i < 100 && !(await source.replicas[0]!.cli('ROLE')).startsWith('master'); i++) {
          await sleep(100);
        }
        expect(await source.replicas[0]!.cli('ROLE')).toMatch(/^master/);
      },
    });
    // Heartbeats, re-copies and offset polls moved to the promoted replica.
    expect(output).toContain("the shard's master is now");
    const masters = await currentMasters(source);
    expect(masters).toContain(source.replicas[0]!.url);
    expect(await assertSameKeys(masters, [target.url])).toBeGreaterThan(10_000);
    await assertNoInternalKeys([target.url, ...masters]);
  }, 180_000);
});

/** Moves `slots` from one master to another the way redis-cli --cluster reshard does, keys included. */
async function migrateSlots(
  c: RedisClusterProcess,
  from: number,
  to: number,
  slots: number[],
): Promise<void> {
  const src = new Redis(c.masters[from]!.url);
  const dst = new Redis(c.masters[to]!.url);
  const all = c.masters.map((m) => new Redis(m.url));
  try {
    const [srcId, dstId] = [
      String(await src.call('CLUSTER', 'MYID')),
      String(await dst.call('CLUSTER', 'MYID')),
    ];
    const dstNode = c.masters[to]!;
    for (const slot of slots) {
      await dst.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', srcId);
      await src.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', dstId);
      for (;;) {
        const keys = (await src.callBuffer('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as Buffer[];
        if (keys.length === 0) break;
        await src.callBuffer('MIGRATE', dstNode.host, dstNode.port, '', 0, 5000, 'REPLACE', 'KEYS', ...keys);
      }
      for (const n of all) await n.call('CLUSTER', 'SETSLOT', slot, 'NODE', dstId);
    }
  } finally {
    for (const n of [src, dst, ...all]) n.disconnect();
  }
}

describe('cluster destination failover', () => {
  it('a destination master killed during incremental sync: its replica takes over, the sync resumes, exactly once', async () => {
    const source = await startRedis({ args: BIG_BACKLOG });
    const target = await cluster({ masters: 3, replicasPerMaster: 1 });
    await seedManyKeys(source.url, { db: 0, count: 20_000, mixed: true, prefix: 'seed:' });
    const killed = target.masters[1]!;
    const output = await syncUnderWriters({
      source: source.url,
      target: target.url,
      clusterWriters: false,
      during: async () => {
        await killed.stop();
        // The cluster promotes the replica after its node timeout (2 s here).
        for (let i = 0; i < 100 && !(await target.replicas[1]!.cli('ROLE')).startsWith('master'); i++) {
          await sleep(100);
        }
        expect(await target.replicas[1]!.cli('ROLE')).toMatch(/^master/);
      },
    });
    expect(output).toContain('a destination master failed');
    const masters = await currentMasters(target, [killed]);
    expect(masters).toHaveLength(3);
    expect(await assertSameKeys([source.url], masters)).toBeGreaterThan(20_000);
    await assertNoInternalKeys(masters);
  }, 180_000);
});

describe('cluster destination resharding', () => {
  it('slots moved between destination masters during incremental sync: the sync follows, nothing lost', async () => {
    const source = await startRedis({ args: BIG_BACKLOG });
    const target = await cluster({ masters: 3 });
    await seedManyKeys(source.url, { db: 0, count: 20_000, mixed: true, prefix: 'seed:' });
    const output = await syncUnderWriters({
      source: source.url,
      target: target.url,
      clusterWriters: false,
      during: () =>
        migrateSlots(
          target,
          0,
          1,
          Array.from({ length: 800 }, (_, i) => i),
        ),
    });
    expect(output).toContain("the destination's slots moved");
    const masters = target.masters.map((m) => m.url);
    expect(await assertSameKeys([source.url], masters)).toBeGreaterThan(20_000);
    await assertNoInternalKeys(masters);
  }, 180_000);
});

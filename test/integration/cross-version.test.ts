import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, startCli, syncArgs, watchCli } from '../support/cli.ts';
import { assertSameData, keyCounts } from '../support/compare.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { SEED_DBS, seedEveryType } from '../support/seed.ts';
import { type ServerBuild, serverBuild } from '../support/server-builds.ts';
import { startWriters } from '../support/writers.ts';

/**
 * A newer source into a destination of an older RDB version, which refuses the source's DUMP payloads:
 * with fullSync.crossVersion logical (the default) every key is written with type commands instead of
 * RESTORE. Every type (streams with consumer groups and pending entries, sorted sets with scores that
 * print differently across 7.2, expiries, three dbs) through a full sync and an incremental sync killed
 * with -9 and resumed, under the non-idempotent writers plus a consumer-group writer (XREADGROUP,
 * XACK, XCLAIM, XAUTOCLAIM, whose 7.x propagation carries ENTRIESREAD) and RESTOREs on the source
 * (payloads the destination cannot read, so their keys are re-copied): compared exactly, key by key,
 * and by `redis-dts verify`.
 */

const dirs: string[] = [];
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'redis-dts-xver-'));
  dirs.push(d);
  return d;
}

afterAll(async () => {
  await stopAllRedis();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TIMEOUT_MS = 240_000;

function pairTest(source: ServerBuild, target: ServerBuild, what: string) {
  const absent = [source, target].filter((b) => !b.present).map((b) => b.binary);
  const name = `${source.name} → ${target.name}: ${what}`;
  return absent.length === 0
    ? (fn: () => Promise<void>) => it(name, fn, TIMEOUT_MS)
    : (fn: () => Promise<void>) => it.skip(`${name} (skipped: ${absent.join(', ')} absent)`, fn);
}

async function startPair(s: ServerBuild, t: ServerBuild): Promise<[RedisProcess, RedisProcess]> {
  return Promise.all([
    startRedis({ binary: s.binary, args: ['--repl-backlog-size', '64mb'] }),
    startRedis({ binary: t.binary }),
  ]);
}

/** Scores whose text differs between %.17g and the shortest form, and the extremes ZADD accepts. */
async function seedOddScores(url: string): Promise<void> {
  const c = new Redis(url);
  try {
    for (const db of [0, 1]) {
      await c.select(db);
      await c.zadd('zset:odd', 1 / 3, 'third', 0.1, 'tenth', 1e308, 'huge', 5e-324, 'denormal');
      await c.zadd(
        'zset:odd',
        '+inf',
        'inf',
        '-inf',
        'minus-inf',
        -0.000001,
        'small',
        2 ** 53 + 1,
        'big-int',
      );
      await c.pexpireat('zset:odd', Date.UTC(2100, 0, 1, 0, 0, 0, 7));
      await c.set('str:with-ttl', 'v', 'PX', 3_600_000);
    }
  } finally {
    c.disconnect();
  }
}

/**
 * Consumer-group traffic on one stream per db, and now and then a RESTORE of a DUMP the source made
 * (into another key): what a 7.x source propagates for these (XGROUP SETID … ENTRIESREAD, XCLAIM,
 * RESTORE … ABSTTL with a newer payload) is what an older destination must be spared.
 */
function startGroupWriter(url: string, dbs: number[]): { stop(): Promise<number> } {
  let stopped = false;
  let ops = 0;
  const run = async (db: number) => {
    const c = new Redis(url, { db });
    const key = 'xg:stream';
    try {
      await c.call('XGROUP', 'CREATE', key, 'g', '$', 'MKSTREAM');
      for (let i = 0; !stopped; i++) {
        await c.xadd(key, '*', 'n', String(i));
        await c.xadd(key, '*', 'n', String(i), 'extra', 'x');
        await c.call('XREADGROUP', 'GROUP', 'g', i % 2 ? 'alice' : 'bob', 'COUNT', '1', 'STREAMS', key, '>');
        if (i % 3 === 0) {
          const pending = (await c.call('XPENDING', key, 'g', '-', '+', '1')) as [string][];
          if (pending[0]) await c.call('XACK', key, 'g', pending[0][0]);
        }
        if (i % 5 === 0) await c.call('XCLAIM', key, 'g', 'carol', '0', '0-1', 'JUSTID');
        if (i % 7 === 0) await c.call('XAUTOCLAIM', key, 'g', 'dave', '0', '0-0', 'COUNT', '2');
        if (i % 11 === 0) {
          const payload = await c.dumpBuffer('zset:odd');
          if (payload) await c.call('RESTORE', 'xr:restored', '0', payload, 'REPLACE');
        }
        if (i % 13 === 0) await c.set(`xs:ex:${i % 4}`, String(i), 'EX', 600);
        ops++;
        await sleep(5);
      }
      // 7.2 propagates XREADGROUP as XCLAIM … LASTID alone, which moves a replica's last-delivered-id
      // but not its entries-read (a 7.2 replica of a 7.2 master drifts the same way: not a cross-version
      // matter). One XGROUP SETID … ENTRIESREAD at the end carries the source's count over, so the
      // comparison still checks every other group field exactly.
      const groups = (await c.call('XINFO', 'GROUPS', key)) as unknown[][];
      for (const g of groups) {
        const f = new Map<string, unknown>();
        for (let i = 0; i + 1 < g.length; i += 2) f.set(String(g[i]), g[i + 1]);
        const read = f.get('entries-read');
        if (read !== null && read !== undefined) {
          await c.call(
            'XGROUP',
            'SETID',
            key,
            String(f.get('name')),
            String(f.get('last-delivered-id')),
            'ENTRIESREAD',
            String(read),
          );
        }
      }
    } finally {
      c.disconnect();
    }
  };
  const all = Promise.all(dbs.map(run));
  return {
    stop: async () => {
      stopped = true;
      await all;
      return ops;
    },
  };
}

async function verifyCli(source: RedisProcess, target: RedisProcess, dbs: readonly number[]): Promise<void> {
  const r = await runCli(['verify', '--source', source.url, '--target', target.url, '--dbs', dbs.join(',')]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout + r.stderr).toMatch(/^verify: consistent/m);
}

async function precheckItems(
  source: RedisProcess,
  target: RedisProcess,
  extra: string[] = [],
): Promise<Record<string, { status: string; detail: string }>> {
  const r = await runCli(['precheck', '--source', source.url, '--target', target.url, '--json', ...extra]);
  const report = JSON.parse(r.stdout) as { items: { id: string; status: string; detail: string }[] };
  return Object.fromEntries(report.items.map((i) => [i.id, i]));
}

/** Full sync, incremental under the writers, kill -9 while it applies, resume until caught up. */
async function syncUnderWrites(source: RedisProcess, target: RedisProcess): Promise<string> {
  const dbs = [0, 1];
  const w = startWriters({ url: source.url, dbs, writers: 2, keys: 50, ratePerWriter: 250 });
  const g = startGroupWriter(source.url, dbs);
  const state = stateDir();
  const first = watchCli(startCli(syncArgs(source.url, target.url, state)));
  await first.until('incremental sync: applying changes');
  await sleep(500);
  first.child.kill('SIGKILL');
  expect((await first.done).signal, first.output()).toBe('SIGKILL');
  const resumed = watchCli(startCli(syncArgs(source.url, target.url, state, ['--until', 'caught-up'])));
  await resumed.until('incremental sync: applying changes');
  await sleep(1500);
  const [stats, groupOps] = await Promise.all([w.stop(), g.stop()]);
  expect(stats.ops).toBeGreaterThan(0);
  expect(groupOps).toBeGreaterThan(0);
  // The writers' shortest expiries (500 ms at most) pass on both sides before the comparisons.
  await sleep(700);
  const r = await resumed.done;
  expect(r.code, resumed.output()).toBe(0);
  expect(resumed.output()).toContain("from the destination's marker");
  expect(resumed.output()).toContain('verify: consistent');
  return first.output() + resumed.output();
}

describe('cross-version: a destination of an older RDB version gets every key with type commands', () => {
  const cases: [string, string][] = [
    // RDB 11 into the machine's 7.0 (RDB 10): the pair the DUMP format split at.
    ['redis-7.2.6', 'redis-7.0'],
    // Before 7.0: no stream counters (ENTRIESADDED, ENTRIESREAD) either.
    ['redis-7.2.6', 'redis-6.2.16'],
    // Before 6.2: no SET … PXAT, LPOP count or XGROUP CREATECONSUMER either.
    ['valkey-8.0.1', 'redis-6.0.20'],
  ];
  for (const [a, b] of cases) {
    const [s, t] = [serverBuild(a), serverBuild(b)];
    pairTest(
      s,
      t,
      'every type, full + incremental under writes, kill -9 and resume, equal key by key and verified',
    )(async () => {
      const [source, target] = await startPair(s, t);
      await seedEveryType(source.url);
      await seedOddScores(source.url);
      const items = await precheckItems(source, target, ['--full-sync-reader', 'auto']);
      expect(items['dump-compat']).toMatchObject({
        status: 'warning',
        detail: expect.stringContaining('every key will be written with type commands instead'),
      });
      // The warning names both servers, so the user sees which pair needs the logical copy.
      expect(items['dump-compat']!.detail).toMatch(
        new RegExp(
          `source \\S+ ${s.version.join('\\.')}\\.\\d+, destination \\S+ ${t.version.join('\\.')}\\.\\d+`,
        ),
      );
      expect(items['full-sync-reader']).toMatchObject({
        status: 'passed',
        detail: expect.stringMatching(/^scan \(auto\): the destination reads an older RDB version/),
      });
      const output = await syncUnderWrites(source, target);
      expect(output).toContain('Versions and DUMP compatibility');
      await assertSameData(source.url, target.url);
      await verifyCli(source, target, SEED_DBS);
    });
  }
});

describe('cross-version: what is refused', () => {
  const [s, t] = [serverBuild('redis-7.2.6'), serverBuild('redis-7.0')];
  pairTest(
    s,
    t,
    '--cross-version refuse fails the precheck, and so does --full-sync-reader rdb; nothing written',
  )(async () => {
    const [source, target] = await startPair(s, t);
    await seedEveryType(source.url, { dbs: [0] });
    const refused = await runCli(syncArgs(source.url, target.url, stateDir(), ['--cross-version', 'refuse']));
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(
      /^error: precheck failed: Versions and DUMP compatibility: the destination cannot RESTORE the source's DUMP payloads .*RDB 11/m,
    );
    // A named error with both versions in the cause and a fix to act on.
    expect(refused.stderr).toMatch(/source Redis 7\.2\.6, destination Redis 7\.0\.\d+/);
    expect(refused.stderr).toMatch(
      /^fix: .*--cross-version logical|^fix: .*destination of Redis 7\.2\.6 or newer/m,
    );
    const rdb = await runCli(syncArgs(source.url, target.url, stateDir(), ['--full-sync-reader', 'rdb']));
    expect(rdb.code, rdb.stderr).toBe(1);
    expect(rdb.stderr).toMatch(
      /^error: precheck failed: Full sync reader: --full-sync-reader rdb: the destination reads an older RDB version/m,
    );
    expect(await keyCounts(target.url)).toEqual({});
  });
});

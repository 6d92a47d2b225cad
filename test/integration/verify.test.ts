import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKeyFilter } from '../../lib/commands/key-filter.ts';
import type { FullSyncUnit } from '../../lib/fullsync/copy-unit.ts';
import type { ProgressSink } from '../../lib/progress/progress-reporter.ts';
import { summaryLine } from '../../lib/verify/summary.ts';
import type { DifferenceCategory, VerifyOptions, VerifyReport } from '../../lib/verify/verify-types.ts';
import { runCli } from '../support/cli.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { BIG_HASH, PEXPIREAT_MS, SEED_DBS, seedEveryType, seedManyKeys } from '../support/seed.ts';
import { verifyUrls } from '../support/verify.ts';

afterAll(async () => {
  await stopAllRedis();
});

/** Makes `replica` an exact copy of `primary` with native replication, then detaches it. */
async function copyByReplication(primary: RedisProcess, replica: RedisProcess): Promise<void> {
  await replica.cli('REPLICAOF', primary.host, String(primary.port));
  for (;;) {
    const info = await replica.cli('INFO', 'replication');
    const offset = /slave_repl_offset:(\d+)/.exec(info)?.[1];
    const primaryOffset = /master_repl_offset:(\d+)/.exec(await primary.cli('INFO', 'replication'))?.[1];
    if (/master_link_status:up/.test(info) && offset !== undefined && offset === primaryOffset) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await replica.cli('REPLICAOF', 'NO', 'ONE');
}

function client(p: RedisProcess, db = 0): Redis {
  return new Redis(p.url, { db, protocol: 2, maxRetriesPerRequest: 0, retryStrategy: () => null });
}

function units(dbs: readonly number[], map: Record<number, number> = {}): FullSyncUnit[] {
  return dbs.map((db) => ({ unitId: `db${db}`, sourceDb: db, targetDb: map[db] ?? db }));
}

function verify(
  source: RedisProcess,
  target: RedisProcess,
  o: Partial<VerifyOptions> & Pick<VerifyOptions, 'units'>,
): Promise<VerifyReport> {
  return verifyUrls(source.url, target.url, o);
}

function totalDifferences(r: VerifyReport): number {
  return Object.values(r.categories).reduce((n, c) => n + c.count, 0);
}

/** The variants of the value comparison: DUMP payloads first, values as data, and everything in pages. */
const PATHS: { name: string; options: Partial<VerifyOptions> }[] = [
  { name: 'DUMP payloads', options: {} },
  { name: 'values as data', options: { dumpPayloads: false } },
  { name: 'every key in pages', options: { bigKeyBytes: 0 } },
];

describe('verify on identical data', () => {
  let source: RedisProcess;
  let target: RedisProcess;
  beforeAll(async () => {
    [source, target] = await Promise.all([startRedis(), startRedis()]);
    await seedEveryType(source.url);
    await copyByReplication(source, target);
    // redis-dts' own keys, each on one side only: never reported.
    await source.cli('SET', 'redis-dts:heartbeat:task-1', String(Date.now()));
    await target.cli('SET', 'redis-dts:marker:task-1:db0', '12345');
    await target.cli('-n', '1', 'SET', 'redis-dts:tmp:task-1:abc', 'partial');
  });

  for (const path of PATHS) {
    it(`finds no difference (${path.name})`, async () => {
      const r = await verify(source, target, { units: units(SEED_DBS), ...path.options });
      expect(summaryLine(r)).toMatch(/^verify: consistent/);
      expect(totalDifferences(r)).toBe(0);
      expect(r.consistent).toBe(true);
      const sourceKeys = await Promise.all(SEED_DBS.map((db) => client(source, db).dbsize()));
      // Every key but the heartbeat was compared.
      expect(r.keysCompared).toBe(sourceKeys.reduce((a, b) => a + b, 0) - 1);
    });
  }

  for (const mode of ['length', 'exists'] as const) {
    it(`finds no difference in ${mode} mode`, async () => {
      const r = await verify(source, target, { units: units(SEED_DBS), mode });
      expect(r.consistent).toBe(true);
      expect(totalDifferences(r)).toBe(0);
      expect(r.keysCompared).toBeGreaterThan(100);
    });
  }
});

describe('verify with planted differences', () => {
  let source: RedisProcess;
  let target: RedisProcess;
  /** Category → keys planted for it, as the report names them. */
  const planted: Record<DifferenceCategory, string[]> = {
    missing: ['db0 "order:3"', 'db1→db2 "user:7"'],
    extra: ['db15 "extra:only-on-target"'],
    type: ['db0 "str:embstr"'],
    value: [
      `db0 "${BIG_HASH}"`,
      'db0 "list:small"',
      'db0 "stream:groups"',
      'db0 "hash:listpack"',
      'db0 "zset:skiplist"',
      'db0 "set:hashtable"',
      'db15 "str:raw"',
    ],
    ttl: ['db0 "ttl:pexpireat"'],
  };
  const dbs = [0, 1, 15];
  const map = { 1: 2 };

  beforeAll(async () => {
    [source, target] = await Promise.all([startRedis(), startRedis()]);
    await seedEveryType(source.url, { big: true });
    await copyByReplication(source, target);
    // The source's db 1 is compared with the target's db 2.
    const t1 = client(target, 1);
    for (;;) {
      const [next, keys] = await t1.scanBuffer('0', 'COUNT', 1000);
      for (const k of keys) await t1.move(k, 2);
      if (String(next) === '0') break;
    }
    t1.disconnect();

    const t0 = client(target, 0);
    const s0 = client(source, 0);
    try {
      await t0.del('order:3');
      await target.cli('-n', '2', 'DEL', 'user:7');
      await target.cli('-n', '15', 'SET', 'extra:only-on-target', 'x');
      await t0.del('str:embstr');
      await t0.rpush('str:embstr', 'now a list');
      // One field of a 1,000,000-field hash.
      await t0.hset(BIG_HASH, 'field:765432', 'changed');
      // The same elements in another order.
      const list = await s0.lrangeBuffer('list:small', 0, -1);
      await t0.del('list:small');
      await t0.rpush('list:small', ...[...list].reverse());
      // Same entries, but one consumer group's last-delivered-id differs.
      await t0.xgroup('SETID', 'stream:groups', 'late', '0');
      await t0.hset('hash:listpack', 'name', 'other');
      await t0.zadd('zset:skiplist', 999, 'db0:5');
      await t0.srem('set:hashtable', 'db0:member:3');
      await t0.sadd('set:hashtable', 'db0:member:three');
      await target.cli('-n', '15', 'SETRANGE', 'str:raw', '50', 'X');
      await t0.pexpireat('ttl:pexpireat', PEXPIREAT_MS + 5000);
      // Within the tolerance: not a difference.
      await t0.pexpireat('ttl:pexpire', Number(await s0.pexpiretime('ttl:pexpire')) + 50);
      // redis-dts' own keys on one side only.
      await s0.set('redis-dts:heartbeat:t', '1');
      await t0.set('redis-dts:marker:t:db0', '1');
    } finally {
      t0.disconnect();
      s0.disconnect();
    }
  });

  for (const path of PATHS) {
    it(`reports every planted key in its category and nothing else (${path.name})`, async () => {
      const r = await verify(source, target, { units: units(dbs, map), ...path.options });
      expect(r.consistent).toBe(false);
      for (const [category, keys] of Object.entries(planted) as [DifferenceCategory, string[]][]) {
        const got = r.categories[category];
        expect({ category, examples: [...got.examples].sort() }).toEqual({
          category,
          examples: [...keys].sort(),
        });
        expect(got.count).toBe(keys.length);
      }
      expect(r.keysDiffering).toBe(Object.values(planted).flat().length);
      const detail = (key: string) => {
        for (const c of Object.values(r.categories)) {
          const i = c.examples.indexOf(key);
          if (i >= 0) return c.details[i];
        }
        return undefined;
      };
      expect(detail(`db0 "${BIG_HASH}"`)).toContain('"field:765432"');
      expect(detail('db0 "stream:groups"')).toMatch(/consumer group "late": last-delivered-id/);
      expect(detail('db0 "str:embstr"')).toBe('a string on the source, a list on the target');
      expect(detail('db0 "ttl:pexpireat"')).toContain('2100-01-01T00:00:00.123Z');
    });
  }

  it('length mode sees types and lengths, not values of the same length', async () => {
    const r = await verify(source, target, { units: units(dbs, map), mode: 'length' });
    expect(r.categories.missing.examples.sort()).toEqual([...planted.missing].sort());
    expect(r.categories.extra.examples).toEqual(planted.extra);
    expect(r.categories.type.examples).toEqual(planted.type);
    // Every planted value difference kept its length (the set lost one member and gained another).
    expect(r.categories.value.count).toBe(0);
    expect(r.categories.ttl.count).toBe(0);
  });

  it('exists mode sees only missing and extra keys', async () => {
    const r = await verify(source, target, { units: units(dbs, map), mode: 'exists' });
    expect(r.categories.missing.examples.sort()).toEqual([...planted.missing].sort());
    expect(r.categories.extra.examples).toEqual(planted.extra);
    expect(r.categories.type.count + r.categories.value.count + r.categories.ttl.count).toBe(0);
  });

  it('a key filter limits what is compared and reported', async () => {
    const r = await verify(source, target, {
      units: units(dbs, map),
      keep: makeKeyFilter({ include: ['order:', 'list:'] }),
    });
    expect(r.categories.missing.examples).toEqual(['db0 "order:3"']);
    expect(r.categories.value.examples).toEqual(['db0 "list:small"']);
    expect(r.keysDiffering).toBe(2);
  });
});

describe('verify rounds and sampling', () => {
  let source: RedisProcess;
  let target: RedisProcess;
  beforeAll(async () => {
    [source, target] = await Promise.all([startRedis(), startRedis()]);
    await seedManyKeys(source.url, { count: 2000, mixed: true });
    await copyByReplication(source, target);
  });

  it('drops a key that was being written in round 1 and is equal afterwards', async () => {
    await target.cli('SET', 'key:10', 'in flight');
    await target.cli('SET', 'key:15', 'stays wrong');
    const fixed: string[] = [];
    // Stands in for the incremental sync landing the write between round 1 and round 2.
    const progress: ProgressSink = {
      update() {},
      finish() {},
      result() {},
      log(message) {
        if (!message.startsWith('round 2')) return;
        fixed.push(message);
        void source.cli('GET', 'key:10').then((v) => target.cli('SET', 'key:10', v));
      },
    };
    const once = await verify(source, target, { units: units([0]) });
    expect(once.categories.value.examples.sort()).toEqual(['db0 "key:10"', 'db0 "key:15"']);

    const r = await verify(source, target, { units: units([0]), rounds: 3, roundDelayMs: 500, progress });
    expect(fixed).toHaveLength(1);
    expect(r.rounds).toBe(3);
    expect(r.categories.value.examples).toEqual(['db0 "key:15"']);
    expect(r.keysDiffering).toBe(1);

    await target.cli('SET', 'key:15', (await source.cli('GET', 'key:15')) as string);
    const clean = await verify(source, target, { units: units([0]), rounds: 3 });
    expect(clean.consistent).toBe(true);
    // Nothing differed after round 1: no further round ran.
    expect(clean.rounds).toBe(1);
  });

  it('samples the same keys every time, by key name', async () => {
    await target.cli('FLUSHALL');
    // Every sampled key is named (all are missing), so the two samples compare whole, as sets: the order
    // they are found in follows SCAN's, which is not stable while Redis rehashes.
    const o = { units: units([0]), sampleRate: 0.25, maxExamples: 2000 };
    const a = await verify(source, target, o);
    const b = await verify(source, target, o);
    expect(a.keysCompared).toBeGreaterThan(0);
    expect(a.keysCompared).toBeLessThan(2000);
    expect(b.keysCompared).toBe(a.keysCompared);
    expect(a.categories.missing.count).toBe(a.keysCompared);
    expect(a.categories.missing.examples).toHaveLength(a.keysCompared);
    expect([...b.categories.missing.examples].sort()).toEqual([...a.categories.missing.examples].sort());
    await copyByReplication(source, target);
  });

  it('counts differences past the tracking limit without re-checking them', async () => {
    await target.cli('FLUSHALL');
    const r = await verify(source, target, {
      units: units([0]),
      maxTrackedKeys: 100,
      rounds: 2,
      maxExamples: 5,
    });
    expect(r.truncated).toBe(true);
    expect(r.categories.missing.count).toBe(2000);
    expect(r.categories.missing.examples).toHaveLength(5);
    expect(summaryLine(r)).toMatch(/2,000 missing on the target.*too many to re-check all/);
    await copyByReplication(source, target);
  });
});

/** The real CLI, the way a user runs it. */
function runVerifyCli(args: string[]) {
  return runCli(['verify', ...args]);
}

describe('redis-dts verify (CLI)', () => {
  let source: RedisProcess;
  let target: RedisProcess;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'redis-dts-verify-'));
    [source, target] = await Promise.all([startRedis(), startRedis()]);
    await seedEveryType(source.url, { dbs: [0, 3] });
    await copyByReplication(source, target);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 0 on identical data, 1 with differences, and writes the JSON report', async () => {
    const base = [
      '--source',
      source.url,
      '--target',
      target.url,
      '--progress',
      'json',
      '--round-delay-ms',
      '0',
    ];
    const ok = await runVerifyCli(base);
    expect(ok.stderr).not.toContain('error:');
    expect(ok.stdout).toMatch(/^verify: consistent: [\d,]+ key\(s\) compared, full mode, 1 round\(s\)/);
    expect(ok.code).toBe(0);

    // Extra keys in a destination db whose source db is empty are found too.
    await target.cli('-n', '5', 'SET', 'stray', '1');
    await target.cli('-n', '3', 'DEL', 'cache:4');
    const report = join(dir, 'verify.json');
    const bad = await runVerifyCli([...base, '--rounds', '2', '--report', report]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(
      /^verify: INCONSISTENT: 2 key\(s\) differ \(1 missing on the target, 1 extra on the target\)/,
    );
    expect(bad.stdout).toContain('db3 "cache:4": a string on the source only');
    const json = JSON.parse(readFileSync(report, 'utf8')) as VerifyReport;
    expect(json.consistent).toBe(false);
    expect(json.rounds).toBe(2);
    expect(json.categories.extra.examples).toEqual(['db5 "stray"']);
    expect(json.categories.missing.examples).toEqual(['db3 "cache:4"']);
    // progress went out as JSON lines, the last one the summary
    const lines = bad.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.at(-1)).toMatchObject({ msg: 'summary', consistent: false, missing: 1, extra: 1 });

    const scoped = await runVerifyCli([...base, '--dbs', '0', '--mode', 'exists']);
    expect(scoped.code).toBe(0);
    await target.cli('-n', '5', 'DEL', 'stray');
    await target.cli('-n', '3', 'SET', 'cache:4', 'x');
  });

  it('rejects bad usage with exit 2 and a bad setting with the spec error', async () => {
    const base = ['--source', source.url, '--target', target.url];
    const unknown = await runVerifyCli([...base, '--frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--frobnicate'/);
    const progress = await runVerifyCli([...base, '--progress', 'loud']);
    expect(progress.code).toBe(2);
    const mode = await runVerifyCli([...base, '--mode', 'quick']);
    expect(mode.code).toBe(1);
    expect(mode.stderr).toMatch(/verify\.mode: expected one of full, length, exists, off, got "quick"/);
    const rate = await runVerifyCli([...base, '--sample-rate', '0']);
    expect(rate.stderr).toMatch(/verify\.sampleRate: expected a number greater than 0 and at most 1/);
  });
});

describe('verify throughput', () => {
  let source: RedisProcess;
  let target: RedisProcess;
  beforeAll(async () => {
    [source, target] = await Promise.all([startRedis(), startRedis()]);
    await seedManyKeys(source.url, { count: 200_000, mixed: true });
    await copyByReplication(source, target);
  });

  it('verifies 200k keys of every collection type and prints keys/s', async () => {
    const r = await verify(source, target, { units: units([0]) });
    expect(r.consistent).toBe(true);
    expect(r.keysCompared).toBe(200_000);
    console.log(
      `verify: ${r.keysCompared} keys (full mode) at ${r.keysPerSecond.toLocaleString('en-US')} keys/s`,
    );
    const lengths = await verify(source, target, { units: units([0]), mode: 'length' });
    expect(lengths.consistent).toBe(true);
    console.log(`verify: length mode at ${lengths.keysPerSecond.toLocaleString('en-US')} keys/s`);
  });
});

import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentProgress } from '../../lib/progress/progress-reporter.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { seedManyKeys } from '../support/seed.ts';
import { serverBuild } from '../support/server-builds.ts';
import { verifyUrls } from '../support/verify.ts';

/**
 * The verifier's shortcuts (issue #14: verify at least as fast as the copy) each skip work only when the
 * result is known without it; these tests hold them to the same findings as the full reads, and check
 * through INFO commandstats that the work is really skipped.
 */

afterAll(async () => {
  await stopAllRedis();
});

const KEYS = 5000;

/** Calls of one command since the last CONFIG RESETSTAT (0 when never called). */
async function calls(p: RedisProcess, command: string): Promise<number> {
  const stats = await p.cli('INFO', 'commandstats');
  const m = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(stats);
  return m ? Number(m[1]) : 0;
}

async function resetStats(...servers: RedisProcess[]): Promise<void> {
  for (const s of servers) await s.cli('CONFIG', 'RESETSTAT');
}

/** The same writes on both servers: equal data, but hash tables in each server's own order. */
async function seedBoth(source: RedisProcess, target: RedisProcess, valueBytes = 100): Promise<void> {
  for (const p of [source, target]) await seedManyKeys(p.url, { count: KEYS, valueBytes, mixed: true });
}

/** A progress sink that runs `f` (synchronously) when the verification of a unit starts. */
function onUnitStart(f: () => void) {
  return {
    ...silentProgress,
    log(message: string) {
      if (message.startsWith('verifying ')) f();
    },
  };
}

function cliSync(p: RedisProcess, ...args: string[]): string {
  return execFileSync('redis-cli', ['-p', String(p.port), ...args], { encoding: 'utf8' }).trim();
}

for (const build of [serverBuild('redis-7.0'), serverBuild('redis-6.0.20')]) {
  const expiry = build.version[0] >= 7 ? 'pexpiretime' : 'pttl';
  describe.skipIf(!build.present)(`expiries on ${build.name}`, () => {
    let source: RedisProcess;
    let target: RedisProcess;
    beforeAll(async () => {
      [source, target] = await Promise.all([
        startRedis({ binary: build.binary }),
        startRedis({ binary: build.binary }),
      ]);
      await seedBoth(source, target);
    });

    it('are not read per key while neither side has a key with an expiry', async () => {
      await resetStats(source, target);
      const r = await verifyUrls(source.url, target.url);
      expect(r.consistent).toBe(true);
      expect(r.keysCompared).toBe(KEYS);
      // At most the capability probe's PEXPIRETIME, on a key no one uses (refused by 6.x, so not counted).
      const probes = build.version[0] >= 7 ? 1 : 0;
      expect(await calls(source, expiry)).toBe(probes);
      expect(await calls(target, expiry)).toBe(probes);
    });

    it('are compared as soon as either side counts one, even one set after the verification started', async () => {
      // Both sides count no expiring key when verify reads their keyspace; then, before any key is
      // compared, one key gets an expiry on the destination and another on the source.
      const progress = onUnitStart(() => {
        cliSync(target, 'PEXPIRE', 'key:4321', '100000000');
        cliSync(source, 'PEXPIRE', 'key:17', '100000000');
      });
      const r = await verifyUrls(source.url, target.url, { progress });
      expect(r.consistent).toBe(false);
      expect(r.categories.ttl.count).toBe(2);
      expect([...r.categories.ttl.examples].sort()).toEqual(['db0 "key:17"', 'db0 "key:4321"']);
      expect(r.categories.ttl.details.join('; ')).toContain('no expiry');
      expect(r.keysDiffering).toBe(2);
      // Equal expiries on both sides, within the tolerance, are still equal.
      await source.cli('PERSIST', 'key:17');
      await target.cli('PERSIST', 'key:4321');
      await source.cli('PEXPIRE', 'key:99', '100000000');
      await target.cli('PEXPIRE', 'key:99', '100000000');
      const again = await verifyUrls(source.url, target.url);
      expect(again.consistent).toBe(true);
    });
  });
}

describe('hash-table sets and hashes', () => {
  let source: RedisProcess;
  let target: RedisProcess;
  beforeAll(async () => {
    [source, target] = await Promise.all([startRedis(), startRedis()]);
    await seedBoth(source, target);
  });

  it('are equal by their payloads, whatever order each server serialized them in: no SMEMBERS', async () => {
    // 100-byte members: every set of the mixed dataset is a hash table (key:3, key:8, …), and so is
    // this one, whose 200 members the two servers all but surely serialize in different orders.
    const members = Array.from({ length: 200 }, (_, i) => `member:${i}:`.padEnd(100, 'x'));
    for (const p of [source, target]) await p.cli('SADD', 'big:set', ...members);
    expect(await source.cli('OBJECT', 'ENCODING', 'key:3')).toBe('hashtable');
    const dumps = await Promise.all([source.cli('DUMP', 'big:set'), target.cli('DUMP', 'big:set')]);
    expect(dumps[0]).not.toBe(dumps[1]);
    await resetStats(source, target);
    const r = await verifyUrls(source.url, target.url);
    expect(r.consistent).toBe(true);
    expect(await calls(source, 'smembers')).toBe(0);
    expect(await calls(source, 'hgetall')).toBe(0);
  });

  it('that differ in one member or one field are still found, with the difference named', async () => {
    await target.cli('SREM', 'key:8', '1:8:'.padEnd(100, 'x'));
    await target.cli('SADD', 'key:8', 'another member'.padEnd(100, 'x'));
    await source.cli('HSET', 'key:11', 'f0', 'x'.repeat(100));
    await target.cli('HSET', 'key:11', 'f0', 'y'.repeat(100));
    await source.cli('HSET', 'key:16', 'f0', 'a'.repeat(100), 'f9', 'b'.repeat(100));
    await target.cli('HSET', 'key:16', 'f0', 'b'.repeat(100), 'f9', 'a'.repeat(100));
    const r = await verifyUrls(source.url, target.url);
    expect(r.categories.value.count).toBe(3);
    const byKey = Object.fromEntries(
      r.categories.value.examples.map((e, i) => [e, r.categories.value.details[i]]),
    );
    expect(byKey['db0 "key:8"']).toMatch(/^member "1:8:x+.*is on the source only$/);
    expect(byKey['db0 "key:11"']).toMatch(/^field "f0" differs/);
    expect(byKey['db0 "key:16"']).toMatch(/^field "f\d" differs/);
    for (const [k, cmd] of [
      ['key:8', 'DEL'],
      ['key:11', 'DEL'],
      ['key:16', 'DEL'],
    ] as const) {
      await source.cli(cmd, k);
      await target.cli(cmd, k);
    }
  });

  it('encoded otherwise on one side (rdbcompression off) are compared as data, and found equal', async () => {
    await target.cli('CONFIG', 'SET', 'rdbcompression', 'no');
    try {
      await resetStats(source, target);
      const r = await verifyUrls(source.url, target.url);
      expect(r.consistent).toBe(true);
      // Uncompressed members do not match the source's LZF bytes: every set is read as data.
      expect(await calls(source, 'smembers')).toBeGreaterThan(0);
    } finally {
      await target.cli('CONFIG', 'SET', 'rdbcompression', 'yes');
    }
  });
});

describe('extra keys on the destination', () => {
  let source: RedisProcess;
  let target: RedisProcess;
  beforeAll(async () => {
    [source, target] = await Promise.all([startRedis(), startRedis()]);
    await seedBoth(source, target, 16);
  });

  it('are looked up on the source one EXISTS per batch while it holds every key, and still found', async () => {
    await resetStats(source, target);
    const r = await verifyUrls(source.url, target.url);
    expect(r.consistent).toBe(true);
    // One per SCAN batch of about 1,000 keys, not one per key.
    expect(await calls(source, 'exists')).toBeLessThan(KEYS / 100);
    await target.cli('SET', 'only:on:target', 'x');
    await target.cli('DEL', 'key:42');
    const r2 = await verifyUrls(source.url, target.url);
    expect(r2.categories.extra.examples).toEqual(['db0 "only:on:target"']);
    expect(r2.categories.missing.examples).toEqual(['db0 "key:42"']);
    expect(r2.categories.missing.details).toEqual(['a list on the source only']);
    expect(r2.keysDiffering).toBe(2);
  });
});

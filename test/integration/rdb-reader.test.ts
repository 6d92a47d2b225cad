import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { DtsError } from '../../lib/errors.ts';
import { parseRedisUrl } from '../../lib/redis/url.ts';
import { RdbParser } from '../../lib/replication/rdb/rdb-parser.ts';
import { readRdbSnapshot } from '../../lib/replication/rdb/rdb-snapshot.ts';
import { assertSameData, compareServers } from '../support/compare.ts';
import { copyThroughRdb, receiveRawRdb } from '../support/rdb-restore.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { seedEveryType } from '../support/seed.ts';
import { SERVER_BUILDS, serverBuild } from '../support/server-builds.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

const DBS = [0, 1, 7, 15];

afterAll(stopAllRedis);

function client(server: RedisProcess, db = 0): Redis {
  return new Redis(server.url, { db, maxRetriesPerRequest: 0, retryStrategy: () => null });
}

/** seedEveryType, db by db; on Redis 6.0, which has no XGROUP CREATECONSUMER, everything else of it. */
async function seed(server: RedisProcess, major: number, minor: number): Promise<void> {
  if (major > 6 || minor >= 2) {
    await seedEveryType(server.url, { dbs: DBS });
    return;
  }
  for (const db of DBS) {
    await seedEveryType(server.url, { dbs: [db] }).catch((e: Error) => {
      if (!/createconsumer/i.test(e.message)) throw e;
    });
  }
}

/**
 * Before 7.0 there is no PEXPIRETIME for compare.ts's key-by-key pass: DEBUG DIGEST (keys, types,
 * values), then per key the TTL (both count down to the same absolute expiry, so the source's PTTL,
 * read first, exceeds the destination's by at most the time between the reads) and XINFO STREAM FULL.
 */
async function assertSameDataBefore70(source: RedisProcess, destination: RedisProcess): Promise<void> {
  const digest = await compareServers(source.url, destination.url, { digestOnly: true });
  expect(digest.equal, digest.summary()).toBe(true);
  for (const db of DBS) {
    const [src, dst] = [client(source, db), client(destination, db)];
    try {
      const keys: Buffer[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await src.scanBuffer(cursor, 'COUNT', 1000);
        cursor = String(next);
        keys.push(...batch);
      } while (cursor !== '0');
      expect(keys.length).toBeGreaterThan(50);
      for (const key of keys) {
        const before = Date.now();
        const srcTtl = await src.pttl(key);
        const dstTtl = await dst.pttl(key);
        const between = Date.now() - before;
        if (srcTtl < 0) expect(dstTtl, key.toString('latin1')).toBe(srcTtl);
        else
          expect(srcTtl - dstTtl, key.toString('latin1')).toSatisfy(
            (d: number) => d >= -1 && d <= between + 1,
          );
        if ((await src.type(key)) === 'stream') {
          expect(await dst.call('XINFO', 'STREAM', key, 'FULL')).toEqual(
            await src.call('XINFO', 'STREAM', key, 'FULL'),
          );
        }
      }
    } finally {
      src.disconnect();
      dst.disconnect();
    }
  }
}

describe('the RDB reader against real servers', () => {
  for (const [i, build] of SERVER_BUILDS.entries()) {
    // Alternate the framings across builds: disk-based `$<len>` and diskless `$EOF:<mark>`.
    const diskless = i % 2 === 1;
    it.skipIf(!build.present)(
      `copies every type and encoding, TTLs, dbs 0/1/7/15 and binary names from ${build.name} (${diskless ? 'diskless' : 'disk-based'}) into a fresh ${build.name} with RESTORE`,
      async () => {
        const args = ['--repl-diskless-sync', diskless ? 'yes' : 'no'];
        const [source, destination] = await Promise.all([
          startRedis({ binary: build.binary, args }),
          startRedis({ binary: build.binary }),
        ]);
        const [major, minor] = build.version;
        await seed(source, major, minor);
        const copy = await copyThroughRdb(source.url, destination.url);
        expect(copy.snapshot.diskless).toBe(diskless);
        expect(copy.snapshot.checksum).toBe('verified');
        expect(copy.snapshot.serverVersion).toMatch(/^\d+\.\d+\.\d+$/);
        expect(copy.snapshot.aux['repl-id']).toBe(copy.snapshot.replid);
        expect(Object.keys(copy.keysPerDb).map(Number)).toEqual(DBS);
        if (major >= 7) await assertSameData(source.url, destination.url);
        else await assertSameDataBefore70(source, destination);
        await Promise.all([source.stop(), destination.stop()]);
      },
    );
  }

  it('copies a 20 MB string, big hash/list/zset/set encodings and function libraries (redis 7.0, disk-based)', async () => {
    const [source, destination] = await Promise.all([
      startRedis({ args: ['--repl-diskless-sync', 'no'] }),
      startRedis(),
    ]);
    const src = client(source);
    try {
      await src.set('str:20mb', Buffer.alloc(20 * 1024 * 1024, 'x'));
      // LZF leaves bytes without repetition raw: this one travels as a 20 MB raw string.
      const noisy = Buffer.allocUnsafe(20 * 1024 * 1024);
      for (let i = 0, x = 1; i < noisy.length; i++) {
        x = (x * 1103515245 + 12345) >>> 0;
        noisy[i] = x >>> 24;
      }
      await src.set('str:20mb-noisy', noisy);
      // Written server-side: big collections in the hashtable, quicklist and skiplist encodings.
      await src.eval(
        `for i = 1, 50000 do
           redis.call('hset', KEYS[1], 'field:' .. i, 'value:' .. i)
           redis.call('rpush', KEYS[2], 'element:' .. i)
           redis.call('zadd', KEYS[3], i / 7, 'member:' .. i)
           redis.call('sadd', KEYS[4], 'member:' .. i)
         end`,
        4,
        'big:hash',
        'big:list',
        'big:zset',
        'big:set',
      );
      await src.call(
        'FUNCTION',
        'LOAD',
        "#!lua name=dtslib\nredis.register_function('dts_one', function() return 1 end)",
      );
      await seedEveryType(source.url, { dbs: [7] });
      const copy = await copyThroughRdb(source.url, destination.url);
      expect(copy.functions).toBe(1);
      expect(copy.snapshot.diskless).toBe(false);
      await assertSameData(source.url, destination.url);
      const dst = client(destination);
      expect(await dst.call('FUNCTION', 'LIST', 'WITHCODE')).toEqual(
        await src.call('FUNCTION', 'LIST', 'WITHCODE'),
      );
      dst.disconnect();
    } finally {
      src.disconnect();
      await Promise.all([source.stop(), destination.stop()]);
    }
  });

  it('refuses a value over the caller’s limit with RDB_VALUE_TOO_LARGE, naming the key', async () => {
    const source = await startRedis();
    const src = client(source);
    try {
      await src.set('small', 'v');
      await src.rpush('wide:list', ...Array.from({ length: 50_000 }, (_, i) => `element:${i}`));
      let handed = 0;
      const err = await readRdbSnapshot(parseRedisUrl(source.url, 'source'), {
        maxValueBytes: 64 * 1024,
        onEntry: () => {
          handed++;
          return undefined;
        },
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DtsError);
      expect((err as DtsError).code).toBe('RDB_VALUE_TOO_LARGE');
      expect((err as DtsError).message).toContain('key "wide:list"');
      expect(handed).toBeLessThanOrEqual(1);
    } finally {
      src.disconnect();
      await source.stop();
    }
  });

  it('fails with the link error, never a summary, when the link drops in the middle of the RDB', async () => {
    const source = await startRedis({ args: ['--rdbcompression', 'no'] });
    const proxy = await startTcpProxy({ host: source.host, port: source.port });
    const src = client(source);
    try {
      for (let i = 0; i < 20; i++) await src.set(`big:${i}`, Buffer.alloc(2 * 1024 * 1024, i));
      let handed = 0;
      const outcome = await readRdbSnapshot(parseRedisUrl(proxy.url(), 'source'), {
        onEntry: () => {
          if (handed++ === 0) proxy.dropAll();
          return undefined;
        },
      }).catch((e: unknown) => e);
      expect(outcome).toBeInstanceOf(DtsError);
      expect((outcome as DtsError).code).toBe('REPLICATION_LINK_LOST');
      expect(handed).toBeLessThan(20);
    } finally {
      src.disconnect();
      await proxy.close();
      await source.stop();
    }
  });

  it.skipIf(!serverBuild('redis-7.2.6').present)(
    'turns the refusal of an older destination (RDB 11 from 7.2 into 7.0) into a named error with both versions',
    async () => {
      const [source, destination] = await Promise.all([
        startRedis({ binary: serverBuild('redis-7.2.6').binary }),
        startRedis(),
      ]);
      const src = client(source);
      try {
        // Enough keys that the refusal comes from a batch written while the RDB is still being read.
        await src.mset(Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k:${i}`, `v:${i}`])));
        const err = await copyThroughRdb(source.url, destination.url).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(DtsError);
        const e = err as DtsError;
        expect(e.code).toBe('RESTORE_RDB_TOO_NEW');
        expect(e.message).toMatch(/7\.0\.15.*RDB version 11|RDB version 11.*7\.0\.15/);
        expect(e.message).toContain('reads RDB 10 and older');
        expect(e.message).toContain('7.2.6');
      } finally {
        src.disconnect();
        await Promise.all([source.stop(), destination.stop()]);
      }
    },
  );

  it('refuses a corrupted byte of a real RDB with a named error, wherever it is', async () => {
    const source = await startRedis();
    try {
      await seedEveryType(source.url, { dbs: [0] });
      const rdb = await receiveRawRdb(source.url);
      expect(parseAll(rdb).keys).toBeGreaterThan(50);
      for (let n = 0; n < 60; n++) {
        const at = 9 + Math.floor(((rdb.length - 9) * n) / 60);
        const bad = Buffer.from(rdb);
        bad[at]! ^= 0x5a;
        let err: unknown;
        try {
          parseAll(bad);
        } catch (e) {
          err = e;
        }
        expect(err, `byte ${at} of ${rdb.length}`).toBeInstanceOf(DtsError);
        expect((err as DtsError).code).toMatch(/^RDB_/);
      }
    } finally {
      await source.stop();
    }
  });
});

function parseAll(rdb: Buffer) {
  const parser = new RdbParser({ onEntry: () => undefined });
  for (let i = 0; i < rdb.length; i += 4096) parser.push(rdb.subarray(i, i + 4096));
  return parser.end();
}

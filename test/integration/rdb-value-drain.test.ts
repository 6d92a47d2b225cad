import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { type RdbOversizedKey, RdbParser } from '../../lib/replication/rdb/rdb-parser.ts';
import { seedBigValues } from '../support/big-values.ts';
import { receiveRawRdb } from '../support/rdb-restore.ts';
import { startRedis, stopAllRedis } from '../support/redis-server.ts';
import { seedEveryType } from '../support/seed.ts';

afterAll(async () => {
  await stopAllRedis();
});

describe('RDB parser, values over maxValueBytes with onOversized', () => {
  it('walks over them in any piece size, names each, hands the others over, and checks the CRC64', async () => {
    const source = await startRedis();
    await seedEveryType(source.url);
    await seedBigValues(source.url, {
      stringBytes: 3 * 2 ** 20,
      setMembers: 60_000,
      hashFields: 40_000,
      listElements: 50_000,
    });
    await source.cli('EXPIRE', 'big:string', '100000');
    // A stream of random entries (its listpacks do not compress away) with a consumer group and a PEL,
    // so the stream's tail (groups, consumers) is walked too.
    const c = new Redis(source.url);
    const p = c.pipeline();
    for (let i = 0; i < 3000; i++) p.xadd('big:stream', '*', 'n', String(i), 'pad', randomBytes(150));
    await p.exec();
    c.disconnect();
    await source.cli('XGROUP', 'CREATE', 'big:stream', 'g', '0');
    await source.cli('XREADGROUP', 'GROUP', 'g', 'c1', 'COUNT', '500', 'STREAMS', 'big:stream', '>');
    const rdb = await receiveRawRdb(source.url);
    const limit = 256 * 1024;
    for (const piece of [7, 4096, 65_536]) {
      const keys: string[] = [];
      const oversized: RdbOversizedKey[] = [];
      const parser = new RdbParser({
        maxValueBytes: limit,
        onEntry: (e) => {
          if (e.kind === 'key') keys.push(e.key.toString('latin1'));
        },
        onOversized: (k) => oversized.push(k),
      });
      for (let at = 0; at < rdb.length; at += piece) parser.push(rdb.subarray(at, at + piece));
      const summary = parser.end();
      expect(summary.checksum).toBe('verified');
      // The 1 MB bitmap of each seeded db too; the list's quicklist nodes compress (LZF) below the limit.
      const names = [...new Set(oversized.map((k) => k.key.toString()))].sort();
      expect(names).toEqual(['big:hash', 'big:set', 'big:stream', 'big:string', 'bitmap:far']);
      expect(keys).toContain('big:list');
      const expiring = oversized.find((k) => k.key.toString() === 'big:string')!;
      expect(expiring.expireAtMs).toBeGreaterThan(Date.now());
      expect(summary.keys).toBe(keys.length + oversized.length);
      expect(keys.length).toBeGreaterThan(20);
      // Nothing of the big values was held: the buffer never grew past the limit.
      expect(parser.peakBufferBytes).toBeLessThanOrEqual(2 * limit);
    }
  }, 120_000);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StampedChunkReader } from '../../lib/fullsync/stamped-chunk-reader.ts';
import { RawConnection } from '../../lib/redis/raw-connection.ts';
import { versionNumber } from '../../lib/redis/server-versions.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { SERVER_BUILDS } from '../support/server-builds.ts';

describe('StampedChunkReader', () => {
  let source: RedisProcess;
  let conn: RawConnection;
  const keys = ['a', 'b', 'c'].map((k) => Buffer.from(k));

  beforeAll(async () => {
    source = await startRedis();
    for (const k of keys) await source.cli('-n', '2', 'SET', k.toString(), `value-${k}`);
    conn = await RawConnection.open({ role: 'source', host: source.host, port: source.port }, { db: 2 });
  });
  afterAll(async () => {
    await conn.close();
    await stopAllRedis();
  });

  it('reads DUMP payloads, absolute expiries and the replication stamp in one transaction', async () => {
    await source.cli('-n', '2', 'PEXPIREAT', 'b', '4102444800123');
    const reader = new StampedChunkReader(conn, { sourceVersion: 70000, db: 2, dbHasExpiringKeys: true });
    const chunk = await reader.read({ cursorAfter: '0', keys: [...keys, Buffer.from('gone')] });
    expect(chunk.expireAt).toEqual([0, 4102444800123, 0, 0]);
    expect(chunk.payloads[3]).toBeNull();
    // The payload restores to the same value elsewhere in the source.
    await conn.call(['RESTORE', 'a-copy', 0, chunk.payloads[0]!]);
    expect(await source.cli('-n', '2', 'GET', 'a-copy')).toBe('value-a');
    await conn.call(['DEL', 'a-copy']);
    const info = await source.cli('INFO', 'replication');
    expect(chunk.stamp.replid).toBe(/master_replid:(\w+)/.exec(info)![1]);
    await source.cli('-n', '2', 'PERSIST', 'b');
  });

  it('skips TTL reads while the db has no expiring keys, and reads again with TTLs once it has', async () => {
    const reader = new StampedChunkReader(conn, { sourceVersion: 70000, db: 2, dbHasExpiringKeys: false });
    const before = await reader.read({ cursorAfter: '0', keys });
    expect(before.expireAt).toEqual([0, 0, 0]);
    expect(before.payloads.every((p) => p !== null)).toBe(true);

    // An expiry appears after the unit started: the transaction's own INFO keyspace reveals it.
    await source.cli('-n', '2', 'PEXPIREAT', 'c', '4102444800999');
    const after = await reader.read({ cursorAfter: '0', keys });
    expect(after.expireAt).toEqual([0, 0, 4102444800999]);
    await source.cli('-n', '2', 'PERSIST', 'c');
    // The reader stays in TTL mode: a later expiry is read directly.
    await source.cli('-n', '2', 'PEXPIREAT', 'a', '4102444800555');
    expect((await reader.read({ cursorAfter: '0', keys })).expireAt).toEqual([4102444800555, 0, 0]);
  });
});

/**
 * Before 7.0 there is no PEXPIRETIME: the chunk reads PTTL and TIME right after it for each key, in the
 * same transaction, so an expiry comes out late only by what passed on the server between the two
 * (TIME once per chunk was late by however long the chunk's later DUMPs took). What passes there is
 * scheduling, not ours to bound in a test: the bound asserted is the transaction's own span, read with
 * TIME just before and after it, and never early. bench/relative-expiry.ts measures the typical error.
 */
describe.each(SERVER_BUILDS.filter((b) => b.version[0] < 7))(
  'StampedChunkReader on $name (PTTL + TIME)',
  (build) => {
    const CHUNK = 1000;
    it.skipIf(!build.present)(
      `places every absolute expiry of a ${CHUNK}-key chunk never early and within its transaction's span${build.present ? '' : ` (skipped: ${build.binary} absent)`}`,
      async () => {
        const source = await startRedis({ binary: build.binary });
        const conn = await RawConnection.open({ role: 'source', host: source.host, port: source.port });
        const serverMs = async () => {
          const [sec, usec] = (await conn.call(['TIME'])) as Buffer[];
          return Number(String(sec)) * 1000 + Math.floor(Number(String(usec)) / 1000);
        };
        try {
          const base = Date.now() + 3_600_000;
          const keys = Array.from({ length: CHUNK }, (_, i) => Buffer.from(`k:${i}`));
          await conn.pipeline(
            keys.flatMap((k, i) => [
              ['SET', k, 'v'.repeat(100)],
              ['PEXPIREAT', k, base + i],
            ]),
          );
          const version = versionNumber(build.name.replace(/^redis-/, ''));
          const reader = new StampedChunkReader(conn, {
            sourceVersion: version,
            db: 0,
            dbHasExpiringKeys: true,
          });
          const before = await serverMs();
          const chunk = await reader.read({ cursorAfter: '0', keys });
          const after = await serverMs();
          const late = chunk.expireAt.map((at, i) => at - (base + i));
          expect(Math.min(...late)).toBeGreaterThanOrEqual(0);
          expect(Math.max(...late)).toBeLessThanOrEqual(after - before);
        } finally {
          await conn.close();
          await source.stop();
        }
      },
    );
  },
);

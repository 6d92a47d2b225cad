import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertSameData, compareServers, keyCounts, printableKey } from '../support/compare.ts';
import { type RedisProcess, startRedis } from '../support/redis-server.ts';
import {
  BIG_COUNT,
  BIG_HASH,
  BIG_LIST,
  BINARY_KEY,
  expectedEncodings,
  FAR_BIT_OFFSET,
  PEXPIREAT_MS,
  SEED_DBS,
  type SeedSummary,
  seedEveryType,
  seedManyKeys,
} from '../support/seed.ts';

function client(server: RedisProcess, db: number): Redis {
  return new Redis(server.url, { db, protocol: 2, maxRetriesPerRequest: 0, retryStrategy: () => null });
}

async function withClient<T>(server: RedisProcess, db: number, fn: (c: Redis) => Promise<T>): Promise<T> {
  const c = client(server, db);
  try {
    return await fn(c);
  } finally {
    c.disconnect();
  }
}

/** Copies master into replica with native replication (the reference copy), then detaches it. */
async function replicate(replica: RedisProcess, master: RedisProcess): Promise<void> {
  // Flushing first means equal key counts cannot be a leftover of the previous copy.
  await replica.cli('FLUSHALL');
  await replica.cli('REPLICAOF', '127.0.0.1', String(master.port));
  const want = await keyCounts(master.url);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const info = await replica.cli('INFO', 'replication');
    if (
      info.includes('master_link_status:up') &&
      info.includes('master_sync_in_progress:0') &&
      JSON.stringify(await keyCounts(replica.url)) === JSON.stringify(want)
    ) {
      break;
    }
    if (Date.now() > deadline) throw new Error(`replica on ${replica.port} did not sync:\n${info}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await replica.cli('REPLICAOF', 'NO', 'ONE');
}

describe('seedEveryType + compareServers', () => {
  let source: RedisProcess;
  let target: RedisProcess;
  let seeded: SeedSummary;

  beforeAll(async () => {
    // Without the default 5 s diskless-sync delay each REPLICAOF copy is immediate.
    [source, target] = await Promise.all([
      startRedis({ args: ['--repl-diskless-sync-delay', '0'] }),
      startRedis(),
    ]);
    seeded = await seedEveryType(source.url);
  });
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('reports exactly the keys the server holds, in dbs 0, 1 and 15', async () => {
    expect(Object.keys(seeded.keysPerDb).map(Number)).toEqual([...SEED_DBS]);
    expect(await keyCounts(source.url)).toEqual(seeded.keysPerDb);
    expect(seeded.keys).toBe(Object.values(seeded.keysPerDb).reduce((a, b) => a + b, 0));
    expect(seeded.keysPerDb[0]).toBeGreaterThan(80);
  });

  it('says NOT equal against an empty server and names missing keys', async () => {
    const c = await compareServers(source.url, target.url, { maxNamed: 1000 });
    expect(c.equal).toBe(false);
    expect(c.differenceCount).toBe(seeded.keys);
    expect(c.differences.every((d) => d.reason === 'missing')).toBe(true);
    expect(c.perDb).toEqual(
      SEED_DBS.map((db) => ({ db, targetDb: db, sourceKeys: seeded.keysPerDb[db], targetKeys: 0 })),
    );
    const named = c.differences.filter((d) => d.db === 0).map((d) => d.key);
    expect(named).toEqual(expect.arrayContaining(['str:raw', '', printableKey(BINARY_KEY), 'stream:groups']));
    expect(c.digests.target).toBe('0'.repeat(40));
    expect(c.digests.source).not.toBe(c.digests.target);

    const limited = await compareServers(source.url, target.url);
    expect(limited.differences).toHaveLength(20);
    expect(limited.differenceCount).toBe(seeded.keys);
    await expect(assertSameData(source.url, target.url)).rejects.toThrow(/differ: \d+ key difference/);
  });

  it('says equal after a native REPLICAOF copy, whole server and per db', async () => {
    await replicate(target, source);
    const c = await assertSameData(source.url, target.url);
    expect(c.equal).toBe(true);
    expect(c.differenceCount).toBe(0);
    expect(c.digests.source).toBe(c.digests.target);
    expect(c.summary()).toContain(`${seeded.keys} keys`);
    const perDb = await compareServers(source.url, target.url, { dbs: [0, 15] });
    expect(perDb.equal).toBe(true);
    expect(perDb.perDb.map((p) => p.db)).toEqual([0, 15]);
  });

  it('names a changed hash field and a changed TTL', async () => {
    await replicate(target, source);
    await target.cli('-n', '0', 'HSET', 'hash:listpack', 'name', 'changed');
    await target.cli('-n', '1', 'PEXPIRE', 'ttl:pexpire', '7200000');

    const c = await compareServers(source.url, target.url);
    expect(c.equal).toBe(false);
    expect(c.differenceCount).toBe(2);
    expect(c.differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ db: 0, key: 'hash:listpack', reason: 'value' }),
        expect.objectContaining({ db: 1, key: 'ttl:pexpire', reason: 'ttl' }),
      ]),
    );
    await expect(assertSameData(source.url, target.url)).rejects.toThrow(/"hash:listpack": value[\s\S]*/);
    await expect(assertSameData(source.url, target.url)).rejects.toThrow(/db 1 "ttl:pexpire": ttl/);
    const onlyDb1 = await compareServers(source.url, target.url, { dbs: [1] });
    expect(onlyDb1.differences.map((d) => [d.key, d.reason])).toEqual([['ttl:pexpire', 'ttl']]);
  });

  it('catches a TTL-only change, which DEBUG DIGEST does not see', async () => {
    await replicate(target, source);
    await target.cli('-n', '15', 'PEXPIREAT', 'ttl:pexpireat', String(PEXPIREAT_MS + 1000));
    const c = await compareServers(source.url, target.url);
    // DEBUG DIGEST mixes in only whether a key has an expiry, not when: the reason for the key pass.
    expect(c.digests.source).toBe(c.digests.target);
    expect(c.equal).toBe(false);
    expect(c.differences).toEqual([
      {
        db: 15,
        key: 'ttl:pexpireat',
        reason: 'ttl',
        detail: expect.stringContaining(`${PEXPIREAT_MS + 15} `),
      },
    ]);
    const quick = await compareServers(source.url, target.url, { digestOnly: true });
    expect(quick.equal).toBe(true);
  });

  it('catches a consumer-group change, which DEBUG DIGEST does not see', async () => {
    await replicate(target, source);
    const base = 1_700_000_000_000;
    await target.cli('-n', '0', 'XACK', 'stream:groups', 'readers', `${base}-1`);
    const c = await compareServers(source.url, target.url);
    expect(c.digests.source).toBe(c.digests.target);
    expect(c.differences).toEqual([
      expect.objectContaining({
        db: 0,
        key: 'stream:groups',
        reason: 'value',
        detail: expect.stringMatching(/pel-count/),
      }),
    ]);
  });

  it('names binary, empty and extra keys printably', async () => {
    await replicate(target, source);
    await withClient(target, 0, (c) => c.set(BINARY_KEY, Buffer.from([0xfe, 0xff])));
    await withClient(target, 1, (c) => c.del(''));
    await withClient(target, 15, (c) => c.set(Buffer.from([0x00, 0x81]), 'x'));
    const c = await compareServers(source.url, target.url);
    expect(c.differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ db: 0, key: '\\xff\\x00\\xfe\\n\\x80\\xc3(', reason: 'value' }),
        expect.objectContaining({ db: 1, key: '', reason: 'missing' }),
        expect.objectContaining({ db: 15, key: '\\x00\\x81', reason: 'extra' }),
      ]),
    );
    expect(c.differenceCount).toBe(3);
    expect(c.perDb.find((p) => p.db === 1)).toMatchObject({
      sourceKeys: seeded.keysPerDb[1],
      targetKeys: seeded.keysPerDb[1]! - 1,
    });
  });

  it('compares across dbs with a dbMap, key by key', async () => {
    await replicate(target, source);
    await withClient(target, 0, async (c) => {
      for await (const keys of c.scanBufferStream({ count: 500 }) as AsyncIterable<Buffer[]>) {
        for (const key of keys) expect(await c.copy(key, key, 'DB', 7)).toBe(1);
      }
    });
    expect(await compareServers(source.url, target.url, { dbMap: { 0: 7 } })).toMatchObject({ equal: true });
    // Values carry their db number, so pairing the wrong dbs must differ.
    const wrong = await compareServers(source.url, target.url, { dbMap: { 1: 7 } });
    expect(wrong.equal).toBe(false);
    expect(wrong.differences.every((d) => d.db === 1 && d.reason !== 'missing')).toBe(true);
    const whole = await compareServers(source.url, target.url);
    expect(whole.equal).toBe(false);
    expect(whole.differences.every((d) => d.reason === 'extra')).toBe(true);
    expect(whole.differenceCount).toBe(seeded.keysPerDb[0]);
  });

  it('produces every intended encoding, stream state, TTL and bitmap in every db', async () => {
    const version = /redis_version:(\S+)/.exec(await source.cli('INFO', 'server'))![1]!;
    for (const db of SEED_DBS) {
      await withClient(source, db, async (c) => {
        for (const { key, encoding } of expectedEncodings(version)) {
          expect({
            db,
            key: printableKey(Buffer.from(key)),
            encoding: await c.object('ENCODING', key),
          }).toEqual({
            db,
            key: printableKey(Buffer.from(key)),
            encoding,
          });
        }
        expect(await c.call('PFDEBUG', 'ENCODING', 'hll:sparse')).toBe('sparse');
        expect(await c.call('PFDEBUG', 'ENCODING', 'hll:dense')).toBe('dense');
        expect(await c.getbit('bitmap:far', FAR_BIT_OFFSET)).toBe(1);
        expect(await c.strlen('bitmap:far')).toBe(1024 * 1024);
        expect(await c.getBuffer(BINARY_KEY)).toEqual(
          Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0x0d, 0x0a, 0x00, db]),
        );
        expect(await c.get('')).toBe(`the empty key name in db${db}`);
        expect(await c.pexpiretime('ttl:pexpireat')).toBe(PEXPIREAT_MS + db);
        expect(await c.pttl('ttl:pexpire')).toBeGreaterThan(0);
        expect(await c.pttl('cache:20')).toBeGreaterThan(0);
        for (const prefix of ['user:', 'order:', 'cache:']) {
          const keys = new Set<string>();
          for await (const batch of c.scanStream({ match: `${prefix}*`, count: 1000 }) as AsyncIterable<
            string[]
          >) {
            for (const k of batch) keys.add(k);
          }
          expect(keys.size).toBe(20);
        }

        const base = 1_700_000_000_000 + db;
        const pending = (await c.xpending('stream:groups', 'readers')) as [
          number,
          string,
          string,
          [string, string][],
        ];
        expect(pending[0]).toBe(12);
        expect(pending[3]).toEqual([
          ['alice', '8'],
          ['bob', '4'],
        ]);
        const redelivered = (await c.xpending('stream:groups', 'readers', '-', '+', 1)) as [
          string,
          string,
          number,
          number,
        ][];
        expect(redelivered[0]).toEqual([`${base}-1`, 'alice', expect.any(Number), 2]);
        const groups = (await c.xinfo('GROUPS', 'stream:groups')) as unknown[][];
        expect(groups).toHaveLength(2);
        const deleted = await streamInfo(c, 'stream:deleted');
        expect(deleted).toMatchObject({
          length: 16,
          'max-deleted-entry-id': `${base}-20`,
          'entries-added': 20,
        });
        const trimmed = await streamInfo(c, 'stream:trimmed');
        // Trimming, unlike XDEL, leaves max-deleted-entry-id alone.
        expect(trimmed).toMatchObject({ length: 10, 'entries-added': 100, 'max-deleted-entry-id': '0-0' });
        expect((trimmed['first-entry'] as unknown[])[0]).toBe(`${base}-91`);
        expect(await streamInfo(c, 'stream:empty-with-group')).toMatchObject({ length: 0, groups: 1 });
      });
    }
  });
});

async function streamInfo(c: Redis, key: string): Promise<Record<string, unknown>> {
  const flat = (await c.xinfo('STREAM', key)) as unknown[];
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

describe('seedManyKeys', () => {
  let server: RedisProcess;
  let secured: RedisProcess;

  beforeAll(async () => {
    [server, secured] = await Promise.all([
      startRedis(),
      startRedis({ args: ['--requirepass', 's3cret pass'], password: 's3cret pass' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), secured?.stop()]);
  });

  it('writes a mix of types with the requested size, prefix and db', async () => {
    await seedManyKeys(server.url, { db: 3, count: 10_000, valueBytes: 100, prefix: 'bulk:', mixed: true });
    expect(await keyCounts(server.url)).toEqual({ 3: 10_000 });
    await withClient(server, 3, async (c) => {
      const types = await Promise.all([0, 1, 2, 3, 4, 9_999].map((i) => c.type(`bulk:${i}`)));
      expect(types).toEqual(['string', 'hash', 'list', 'set', 'zset', 'zset']);
      expect(await c.strlen('bulk:0')).toBe(100);
      expect(await c.hlen('bulk:1')).toBe(3);
      expect((await c.hget('bulk:1', 'f2'))?.length).toBe(100);
      expect(await c.llen('bulk:2')).toBe(3);
      expect(await c.scard('bulk:3')).toBe(3);
      expect(await c.zcard('bulk:4')).toBe(3);
    });
  });

  it('writes plain strings by default, through a password, and fails loudly on a wrong one', async () => {
    await seedManyKeys(secured.url, { count: 5_000 });
    expect(await keyCounts(secured.url)).toEqual({ 0: 5_000 });
    expect(await secured.cli('TYPE', 'key:4999')).toBe('string');
    expect(await secured.cli('STRLEN', 'key:0')).toBe('32');
    await assertSameData(secured.url, secured.url);
    const wrong = secured.url.replace(encodeURIComponent('s3cret pass'), 'nope');
    await expect(seedManyKeys(wrong, { count: 10 })).rejects.toThrow(/redis-cli --pipe/);
  });
});

describe('seedEveryType with big: true', () => {
  let server: RedisProcess;

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('adds a 1,000,000-field hash and a 1,000,000-element list to the first db', {
    timeout: 300_000,
  }, async () => {
    const summary = await seedEveryType(server.url, { big: true, dbs: [2] });
    expect(await keyCounts(server.url)).toEqual(summary.keysPerDb);
    await withClient(server, 2, async (c) => {
      expect(await c.hlen(BIG_HASH)).toBe(BIG_COUNT);
      expect(await c.llen(BIG_LIST)).toBe(BIG_COUNT);
      expect(await c.hget(BIG_HASH, `field:${BIG_COUNT - 1}`)).toBe(`value:${BIG_COUNT - 1}`);
      expect(await c.lindex(BIG_LIST, -1)).toBe(`element:${BIG_COUNT - 1}`);
      expect(await c.object('ENCODING', BIG_HASH)).toBe('hashtable');
      expect(await c.object('ENCODING', BIG_LIST)).toBe('quicklist');
    });
  });
});

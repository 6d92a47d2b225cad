import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDtsError } from '../../lib/errors.ts';
import { copyKeyInParts, printableKey, unsupportedBigKey } from '../../lib/fullsync/copy-key-in-parts.ts';
import { hashTag, tempKeyFor } from '../../lib/fullsync/copy-key-temp-name.ts';
import { type RedisProcess, startRedis } from '../support/redis-server.ts';

const MB = 1024 * 1024;
const PREFIX = 'redis-dts:tmp:test:';
// Below the destination's 1 MB proto-max-bulk-len (the smallest Redis accepts), so every write is legal.
const MAX_COMMAND_BYTES = 256 * 1024;

let sourceServer: RedisProcess;
let targetServer: RedisProcess;
let source: Redis;
let target: Redis;
const clients: Redis[] = [];

function client(server: RedisProcess, options: RedisOptions = {}): Redis {
  const c = new Redis({ host: server.host, port: server.port, ...options });
  clients.push(c);
  return c;
}

/** A key or value that is not valid UTF-8 and holds a NUL. */
function bin(label: string): Buffer {
  return Buffer.concat([Buffer.from(label), Buffer.from([0xff, 0x00, 0xfe, 0x80, 0xc3])]);
}

beforeAll(async () => {
  [sourceServer, targetServer] = await Promise.all([
    startRedis(),
    startRedis({ args: ['--proto-max-bulk-len', '1mb'] }),
  ]);
  source = client(sourceServer);
  target = client(targetServer);
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all([sourceServer?.stop(), targetServer?.stop()]);
});

async function digest(c: Redis, key: Buffer): Promise<string> {
  const reply = (await c.callBuffer('DEBUG', ['DIGEST-VALUE', key])) as Buffer[];
  return reply[0]!.toString();
}

async function pexpiretime(c: Redis, key: Buffer): Promise<number> {
  return Number(await c.callBuffer('PEXPIRETIME', [key]));
}

async function scanAll(c: Redis): Promise<Buffer[]> {
  const keys: Buffer[] = [];
  let cursor = '0';
  do {
    const [next, page] = await c.scanBuffer(cursor, 'COUNT', 1000);
    cursor = next.toString();
    keys.push(...page);
  } while (cursor !== '0');
  return keys;
}

/** Proves the key needs this path: its DUMP is over the destination's limit and RESTORE is refused. */
async function expectRestoreRefused(key: Buffer, minPayload = 2 * MB): Promise<void> {
  const payload = await source.dumpBuffer(key);
  expect(payload.length).toBeGreaterThan(minPayload);
  const probe = new Redis({
    host: targetServer.host,
    port: targetServer.port,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  probe.on('error', () => undefined);
  try {
    await expect(probe.restore('restore-probe', 0, payload, 'REPLACE')).rejects.toThrow();
  } finally {
    probe.disconnect();
  }
  expect(await target.exists('restore-probe')).toBe(0);
}

/** Gives the key a pre-existing value of another type, with an expiry, that the copy must replace. */
async function seedStaleTarget(key: Buffer): Promise<void> {
  await target.del(key);
  await target.set(key, 'stale value');
  await target.pexpire(key, 999_000);
}

async function expireInAnHour(key: Buffer): Promise<number> {
  await source.pexpireat(key, Date.now() + 3_600_000);
  return pexpiretime(source, key);
}

async function expectSameValue(key: Buffer): Promise<void> {
  const want = await digest(source, key);
  expect(want).not.toMatch(/^0+$/);
  expect(await digest(target, key)).toBe(want);
  expect(await pexpiretime(target, key)).toBe(await pexpiretime(source, key));
}

async function expectNoTempKeys(): Promise<void> {
  const leftovers = (await scanAll(target)).filter((k) => k.subarray(0, PREFIX.length).toString() === PREFIX);
  expect(leftovers).toEqual([]);
}

interface StreamInfo {
  groups: GroupInfo[];
  [field: string]: unknown;
}

interface GroupInfo {
  'pel-count': number;
  pending: unknown[][];
  consumers: { pending: unknown[][]; [field: string]: unknown }[];
  [field: string]: unknown;
}

/**
 * XINFO STREAM FULL (all of it) as objects, without what the copy cannot reproduce: consumers' seen-time and
 * active-time, the radix tree's node layout (the source keeps deleted entries inside its nodes), and, when
 * asked, delivery times. Entries are left out: DEBUG DIGEST-VALUE compares them (and deep-comparing
 * megabytes of Buffers is slow).
 */
async function streamInfo(c: Redis, key: Buffer, o = { exactDeliveryTimes: true }): Promise<StreamInfo> {
  const mapped = new Redis({ host: c.options.host, port: c.options.port, replyMapping: 'resp3' });
  try {
    const info = (await mapped.callBuffer('XINFO', ['STREAM', key, 'FULL', 'COUNT', '0'])) as StreamInfo;
    delete info.entries;
    delete info['radix-tree-keys'];
    delete info['radix-tree-nodes'];
    for (const g of info.groups) {
      for (const consumer of g.consumers) {
        delete consumer['seen-time'];
        delete consumer['active-time'];
        if (!o.exactDeliveryTimes) consumer.pending = consumer.pending.map((p) => [p[0], p[2]]);
      }
      if (!o.exactDeliveryTimes) g.pending = g.pending.map((p) => [p[0], p[1], p[3]]);
    }
    return info;
  } finally {
    mapped.disconnect();
  }
}

/** Writes `count` generated commands to the source in pipelines of 200. */
async function fill(
  count: number,
  add: (p: ReturnType<Redis['pipeline']>, i: number) => void,
): Promise<void> {
  for (let i = 0; i < count; i += 200) {
    const p = source.pipeline();
    for (let j = i; j < Math.min(count, i + 200); j++) add(p, j);
    const replies = await p.exec();
    for (const [err] of replies ?? []) if (err) throw err;
  }
}

describe('copyKeyInParts per type', () => {
  // proto-max-bulk-len also caps string values (APPEND/SETRANGE refuse to grow past it), so only a string
  // within the few bytes by which its DUMP is longer than itself can take this path; a longer one is refused.
  it('copies a binary string whose DUMP is just over the limit in GETRANGE chunks, replacing the target value', async () => {
    const key = bin('string');
    const value = Buffer.concat([randomBytes(MB - 16), bin('tail'), randomBytes(7)]);
    expect(value.length).toBe(MB);
    await source.set(key, value);
    const at = await expireInAnHour(key);
    await seedStaleTarget(key);
    await expectRestoreRefused(key, MB);

    const result = await copyKeyInParts({
      source,
      target,
      key,
      pexpireAt: at,
      tempPrefix: PREFIX,
      maxCommandBytes: MAX_COMMAND_BYTES,
    });

    expect(result).toEqual({ type: 'string', elements: 1, bytes: value.length });
    expect((await target.getBuffer(key))!.equals(value)).toBe(true);
    await expectSameValue(key);
    await expectNoTempKeys();
  });

  it('refuses a string longer than the limit with a DtsError, keeping the old value', async () => {
    const key = bin('long-string');
    await source.set(key, randomBytes(2.5 * MB));
    await expectRestoreRefused(key);
    await target.set(key, 'old');

    const failure = await copyKeyInParts({
      source,
      target,
      key,
      pexpireAt: -1,
      tempPrefix: PREFIX,
      maxCommandBytes: MAX_COMMAND_BYTES,
    }).catch((e: unknown) => e);

    expect(isDtsError(failure) && failure.code).toBe('BIG_KEY_UNSUPPORTED');
    expect((failure as Error).message).toContain(printableKey(key));
    expect((failure as Error).message).toContain(`${2.5 * MB} bytes`);
    expect(await target.get(key)).toBe('old');
    await expectNoTempKeys();
  });

  it('copies a list page by page in order, and clears a stale expiry when the source has none', async () => {
    const key = bin('list');
    await fill(3000, (p, i) => p.rpush(key, Buffer.concat([bin(`e${i}`), randomBytes(1000)])));
    await seedStaleTarget(key);
    await expectRestoreRefused(key);

    const result = await copyKeyInParts({
      source,
      target,
      key,
      pexpireAt: -1,
      tempPrefix: PREFIX,
      pageSize: 300,
      maxCommandBytes: MAX_COMMAND_BYTES,
    });

    expect(result.type).toBe('list');
    expect(result.elements).toBe(3000);
    await expectSameValue(key);
    expect(await pexpiretime(target, key)).toBe(-1);
    await expectNoTempKeys();
  });

  it('copies a set', async () => {
    const key = bin('set');
    await fill(3000, (p, i) => p.sadd(key, Buffer.concat([bin(`m${i}`), randomBytes(1000)])));
    const at = await expireInAnHour(key);
    await seedStaleTarget(key);
    await expectRestoreRefused(key);

    const result = await copyKeyInParts({
      source,
      target,
      key,
      pexpireAt: at,
      tempPrefix: PREFIX,
      maxCommandBytes: MAX_COMMAND_BYTES,
    });

    expect(result.type).toBe('set');
    expect(await target.scard(key)).toBe(3000);
    await expectSameValue(key);
    await expectNoTempKeys();
  });

  it('copies a sorted set with infinite, fractional, tiny and huge scores exactly', async () => {
    const key = bin('zset');
    const special = ['inf', '-inf', '0.1', '-1e-300', '1.7976931348623157e308', '3.141592653589793', '-0'];
    await fill(3000, (p, i) => {
      const score = special[i % 8] ?? String(i / 7);
      p.zadd(key, score, Buffer.concat([bin(`z${i}`), randomBytes(1000)]));
    });
    const at = await expireInAnHour(key);
    await seedStaleTarget(key);
    await expectRestoreRefused(key);

    const result = await copyKeyInParts({
      source,
      target,
      key,
      pexpireAt: at,
      tempPrefix: PREFIX,
      pageSize: 500,
      maxCommandBytes: MAX_COMMAND_BYTES,
    });

    expect(result.type).toBe('zset');
    expect(await target.zcard(key)).toBe(3000);
    // [member, score] of the lowest and highest entry (RESP3 nests the pairs, RESP2 does not).
    const ends = async (c: Redis) =>
      [
        (await c.callBuffer('ZRANGE', [key, '0', '0', 'WITHSCORES'])) as unknown[],
        (await c.callBuffer('ZRANGE', [key, '-1', '-1', 'WITHSCORES'])) as unknown[],
      ]
        .flat(2)
        .map(String);
    const targetEnds = await ends(target);
    expect([targetEnds[1], targetEnds[3]]).toEqual(['-inf', 'inf']);
    expect(targetEnds).toEqual(await ends(source));
    await expectSameValue(key);
    await expectNoTempKeys();
  });

  it('copies a hash with binary fields and values', async () => {
    const key = bin('hash');
    await fill(3000, (p, i) => p.hset(key, bin(`f${i}`), Buffer.concat([bin('v'), randomBytes(1000)])));
    const at = await expireInAnHour(key);
    await seedStaleTarget(key);
    await expectRestoreRefused(key);

    const result = await copyKeyInParts({
      source,
      target,
      key,
      pexpireAt: at,
      tempPrefix: PREFIX,
      maxCommandBytes: MAX_COMMAND_BYTES,
    });

    expect(result.type).toBe('hash');
    expect(await target.hlen(key)).toBe(3000);
    await expectSameValue(key);
    await expectNoTempKeys();
  });
  it('sends an element larger than maxCommandBytes in a command of its own', async () => {
    const key = bin('hash-of-large-values');
    for (let i = 0; i < 4; i++) await source.hset(key, bin(`f${i}`), randomBytes(700 * 1024));
    await expectRestoreRefused(key);

    const result = await copyKeyInParts({
      source,
      target,
      key,
      pexpireAt: -1,
      tempPrefix: PREFIX,
      maxCommandBytes: MAX_COMMAND_BYTES,
    });

    expect(result).toEqual({ type: 'hash', elements: 4, bytes: 4 * (700 * 1024 + bin('f0').length) });
    await expectSameValue(key);
    await expectNoTempKeys();
  });
});

describe('copyKeyInParts for streams', () => {
  const key = bin('stream');
  const g2 = bin('group2');
  const ids: string[] = [];

  beforeAll(async () => {
    const base = 1_700_000_000_000;
    for (let i = 0; i < 2700; i++) ids.push(`${base + Math.floor(i / 3)}-${i % 3}`);
    await fill(ids.length, (p, i) => {
      const fields: Buffer[] = [bin('field'), Buffer.concat([bin('v'), randomBytes(1000)])];
      if (i % 5 === 0) fields.push(bin('extra'), bin(String(i)));
      p.xadd(key, ids[i]!, ...fields);
    });
    // Group 1: two consumers with pending entries, one without, some acked, some delivered twice.
    await source.xgroup('CREATE', key, 'g1', '0');
    await source.xreadgroup('GROUP', 'g1', 'c1', 'COUNT', 300, 'STREAMS', key, '>');
    await source.xreadgroup('GROUP', 'g1', 'c2', 'COUNT', 200, 'STREAMS', key, '>');
    await source.xgroup('CREATECONSUMER', key, 'g1', 'c3');
    await source.xack(key, 'g1', ...ids.slice(100, 150));
    await source.xreadgroup('GROUP', 'g1', 'c1', 'COUNT', 20, 'STREAMS', key, '0');
    // Group 2 (binary name and consumer) starts mid-stream.
    await source.xgroup('CREATE', key, g2, ids[1000]!);
    await source.xreadgroupBuffer('GROUP', g2, bin('consumer'), 'COUNT', 150, 'STREAMS', key, '>');
    // Pending entries whose messages are gone: trimmed from the head and deleted from the middle; plus
    // deletions that are not pending, and of the last entry (last-generated-id stays beyond the end).
    await source.xdel(key, ids[10]!, ids[11]!, ids[250]!, ids[1010]!, ids[2000]!, ids[2699]!);
    await source.xtrim(key, 'MINID', ids[5]!);
  });

  it('has the shape the test relies on', async () => {
    const info = await streamInfo(source, key);
    const groups = info.groups;
    expect(groups).toHaveLength(2);
    expect(groups[0]!['pel-count']).toBe(450);
    expect(groups[0]!.consumers).toHaveLength(3);
    expect(groups[1]!['pel-count']).toBe(150);
    expect(String(info['max-deleted-entry-id'])).toBe(ids[2699]);
    expect(String(info['recorded-first-entry-id'])).toBe(ids[5]);
    await expectRestoreRefused(key);
  });

  it('copies entries, counters, groups, consumers and pending entries with exact delivery times', async () => {
    const at = await expireInAnHour(key);
    await seedStaleTarget(key);

    const result = await copyKeyInParts({
      source,
      target,
      key,
      pexpireAt: at,
      tempPrefix: PREFIX,
      maxCommandBytes: MAX_COMMAND_BYTES,
    });

    expect(result).toMatchObject({ type: 'stream', elements: 2700 - 5 - 6 });
    await expectSameValue(key);
    expect(await streamInfo(target, key)).toEqual(await streamInfo(source, key));
    await expectNoTempKeys();
  });

  it('pages long pending lists with XPENDING (delivery times then estimated) and RESP3 maps', async () => {
    await source.persist(key);
    const mappedSource = client(sourceServer, { replyMapping: 'resp3' });

    await copyKeyInParts({
      source: mappedSource,
      target,
      key,
      pexpireAt: -1,
      tempPrefix: PREFIX,
      pageSize: 64,
      maxCommandBytes: MAX_COMMAND_BYTES,
    });

    await expectSameValue(key);
    const estimated = { exactDeliveryTimes: false };
    expect(await streamInfo(target, key, estimated)).toEqual(await streamInfo(source, key, estimated));
    await expectNoTempKeys();
  });
});

describe('copyKeyInParts for small and empty streams', () => {
  async function copyAndCompare(key: Buffer, elements = 0): Promise<void> {
    const result = await copyKeyInParts({ source, target, key, pexpireAt: -1, tempPrefix: PREFIX });
    expect(result).toMatchObject({ type: 'stream', elements });
    expect(await target.type(key)).toBe('stream');
    expect(await streamInfo(target, key)).toEqual(await streamInfo(source, key));
    await expectNoTempKeys();
  }

  it('keeps groups whose pending entries point at deleted messages', async () => {
    const key = bin('empty-stream-pel');
    for (const id of ['5-1', '6-1', '7-1']) await source.xadd(key, id, 'f', 'v');
    await source.xgroup('CREATE', key, 'g', '0');
    await source.xreadgroup('GROUP', 'g', 'c', 'COUNT', 2, 'STREAMS', key, '>');
    await source.xdel(key, '5-1', '6-1', '7-1');
    expect(await source.xlen(key)).toBe(0);
    await copyAndCompare(key);
    expect(await target.xpending(key, 'g')).toEqual([2, '5-1', '6-1', [['c', '2']]]);
  });

  it('keeps max-deleted-entry-id at 0-0 when pending messages were only trimmed away', async () => {
    const key = bin('trimmed-pel');
    for (const id of ['1-1', '2-1', '3-1', '4-1']) await source.xadd(key, id, 'f', 'v');
    await source.xgroup('CREATE', key, 'g', '0');
    await source.xreadgroup('GROUP', 'g', 'c', 'COUNT', 2, 'STREAMS', key, '>');
    await source.xtrim(key, 'MAXLEN', 2);
    const info = (await source.xinfo('STREAM', key)) as unknown[];
    expect(info[info.indexOf('max-deleted-entry-id') + 1]).toBe('0-0');
    await copyAndCompare(key, 2);
    expect(await target.xpending(key, 'g')).toEqual([2, '1-1', '2-1', [['c', '2']]]);
  });

  it('copies a stream created by XGROUP CREATE MKSTREAM and one emptied without groups', async () => {
    const never = bin('never-added');
    await source.xgroup('CREATE', never, 'g', '$', 'MKSTREAM');
    await copyAndCompare(never);
    const emptied = bin('emptied');
    await source.xadd(emptied, '9-9', 'f', 'v');
    await source.xdel(emptied, '9-9');
    await copyAndCompare(emptied);
  });
});

describe('copyKeyInParts edge cases', () => {
  it('reports a vanished key as none and leaves the target alone', async () => {
    const key = bin('never-existed');
    await target.set(key, 'kept');
    const result = await copyKeyInParts({ source, target, key, pexpireAt: -1, tempPrefix: PREFIX });
    expect(result).toEqual({ type: 'none', elements: 0, bytes: 0 });
    expect(await target.get(key)).toBe('kept');
    await expectNoTempKeys();
  });

  it('removes the temporary key and keeps the old value when the target fails mid-copy', async () => {
    const small = await startRedis({
      args: ['--proto-max-bulk-len', '1mb', '--maxmemory', '4mb', '--maxmemory-policy', 'noeviction'],
    });
    try {
      const smallTarget = client(small);
      const key = bin('too-big-for-maxmemory');
      await fill(6000, (p, i) => p.rpush(key, Buffer.concat([bin(`e${i}`), randomBytes(1000)])));
      await smallTarget.set(key, 'old');

      await expect(
        copyKeyInParts({
          source,
          target: smallTarget,
          key,
          pexpireAt: -1,
          tempPrefix: PREFIX,
          maxCommandBytes: MAX_COMMAND_BYTES,
        }),
      ).rejects.toThrow(/OOM/);

      expect(await smallTarget.get(key)).toBe('old');
      expect((await scanAll(smallTarget)).map(String)).toEqual([key.toString()]);
    } finally {
      clients.at(-1)?.disconnect();
      await small.stop();
    }
  });
});

describe('temporary key names', () => {
  let cluster: RedisProcess;
  let slots: Redis;

  beforeAll(async () => {
    // Only for CLUSTER KEYSLOT, which answers without any slots assigned.
    cluster = await startRedis({ args: ['--cluster-enabled', 'yes'] });
    slots = client(cluster);
  });

  afterAll(async () => {
    slots?.disconnect();
    await cluster?.stop();
  });

  const slot = async (k: Buffer) => Number(await slots.callBuffer('CLUSTER', ['KEYSLOT', k]));

  it.each([
    ['a hash tag', Buffer.from('user:{42}:profile')],
    ['no tag', Buffer.from('plain:key')],
    ['a binary key', bin('binary')],
    ['a tag holding a brace', Buffer.from('a{{b}c')],
    ['an unclosed brace', Buffer.from('a{b')],
  ])('lands in the same cluster slot as a key with %s', async (_, key) => {
    const tmp = tempKeyFor(key, PREFIX);
    expect(tmp.subarray(0, PREFIX.length).toString()).toBe(PREFIX);
    expect(await slot(tmp)).toBe(await slot(key));
  });

  it('reuses a valid tag and embeds an untagged key whole', () => {
    expect(hashTag(Buffer.from('a{b}c'))?.toString()).toBe('b');
    expect(hashTag(Buffer.from('a{}b{c}'))).toBeUndefined();
    expect(tempKeyFor(Buffer.from('u{7}x'), 'p:', 'r').toString()).toBe('p:r:{7}');
    expect(tempKeyFor(Buffer.from('plain'), 'p:', 'r').toString()).toBe('p:r:{plain}');
  });

  it('falls back to an untagged name when the key cannot be embedded', () => {
    expect(tempKeyFor(Buffer.from('a}b'), 'p:', 'r').toString()).toBe('p:r');
    expect(tempKeyFor(Buffer.alloc(0), 'p:', 'r').toString()).toBe('p:r');
    // `{}` comes first, so the whole key is hashed (no tag), and it holds a `}`.
    expect(tempKeyFor(Buffer.from('x{}{y}'), 'p:', 'r').toString()).toBe('p:r');
    expect(tempKeyFor(Buffer.from('k'), 'p:', 'r1').equals(tempKeyFor(Buffer.from('k'), 'p:', 'r2'))).toBe(
      false,
    );
  });
});

describe('unsupported types', () => {
  it('names the key (binary escaped) and the type in a DtsError', () => {
    const e = unsupportedBigKey(Buffer.from([0x61, 0xff, 0x00, 0x22, 0x5c]), 'ReJSON-RL');
    expect(isDtsError(e)).toBe(true);
    expect(e.code).toBe('BIG_KEY_UNSUPPORTED');
    expect(e.message).toContain('"a\\xff\\x00\\"\\\\"');
    expect(e.message).toContain('ReJSON-RL');
    expect(e.fix).toMatch(/proto-max-bulk-len/);
  });

  it('cuts very long keys', () => {
    const printed = printableKey(Buffer.alloc(1000, 0x61));
    expect(printed).toContain('(1000 bytes)');
    expect(printed.length).toBeLessThan(260);
  });
});

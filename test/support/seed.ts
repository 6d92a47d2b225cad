import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { smallEncodings, versionNumber } from '../../lib/redis/server-versions.ts';

/** What seedEveryType wrote: distinct key names per db (the server's DBSIZE on a fresh server). */
export interface SeedSummary {
  keysPerDb: Record<number, number>;
  keys: number;
}

export interface SeedOptions {
  /** Also write BIG_HASH (1,000,000 fields) and BIG_LIST (1,000,000 elements) into the first db. */
  big?: boolean;
  dbs?: number[];
}

export interface SeedManyOptions {
  db?: number;
  count: number;
  /** Bytes of each string value and of each element of the other types (default 32). */
  valueBytes?: number;
  /** Key names are `${prefix}${i}` (default 'key:'). */
  prefix?: string;
  /** Rotate string, hash, list, set and sorted set keys (3 elements each) instead of strings only. */
  mixed?: boolean;
}

export const SEED_DBS: readonly number[] = [0, 1, 15];
export const BIG_HASH = 'big:hash';
export const BIG_LIST = 'big:list';
export const BIG_COUNT = 1_000_000;
/** Absolute expiry of `ttl:pexpireat`: a fixed instant with a non-zero millisecond part. */
export const PEXPIREAT_MS = Date.UTC(2100, 0, 1, 0, 0, 0, 123);
/** A key name that is not valid UTF-8, so only Buffer-safe code paths can copy it. */
export const BINARY_KEY = Buffer.from([0xff, 0x00, 0xfe, 0x0a, 0x80, 0xc3, 0x28]);
/** Far enough that the bitmap is a 1 MiB string. */
export const FAR_BIT_OFFSET = 8 * 1024 * 1024 - 1;

const HOUR_MS = 3_600_000;
/** Invalid UTF-8 sequences and NUL bytes: any string conversion on the way corrupts them. */
const BINARY_VALUE = Buffer.from([
  0x00, 0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0x0d, 0x0a, 0x00,
]);

export interface ExpectedEncoding {
  key: string | Buffer;
  encoding: string;
}

/** `OBJECT ENCODING` every listed key must report after seedEveryType, on the given Redis version. */
export function expectedEncodings(redisVersion: string): ExpectedEncoding[] {
  const small = smallEncodings(versionNumber(redisVersion));
  return [
    { key: 'str:raw', encoding: 'raw' },
    { key: 'str:large', encoding: 'raw' },
    { key: 'str:int', encoding: 'int' },
    { key: 'str:int-min', encoding: 'int' },
    { key: 'str:embstr', encoding: 'embstr' },
    { key: 'str:empty', encoding: 'embstr' },
    { key: '', encoding: 'embstr' },
    { key: BINARY_KEY, encoding: 'embstr' },
    { key: 'list:small', encoding: small.list },
    { key: 'list:quicklist', encoding: 'quicklist' },
    { key: 'list:large-elements', encoding: 'quicklist' },
    { key: 'set:intset', encoding: 'intset' },
    { key: 'set:hashtable', encoding: 'hashtable' },
    { key: 'set:large-intset', encoding: 'hashtable' },
    { key: 'set:listpack', encoding: small.stringSet },
    { key: 'zset:listpack', encoding: small.zset },
    { key: 'zset:skiplist', encoding: 'skiplist' },
    { key: 'zset:long-member', encoding: 'skiplist' },
    { key: 'hash:listpack', encoding: small.hash },
    { key: 'hash:hashtable', encoding: 'hashtable' },
    { key: 'hash:long-value', encoding: 'hashtable' },
    { key: 'hash:binary', encoding: small.hash },
    { key: 'stream:groups', encoding: 'stream' },
    { key: 'stream:deleted', encoding: 'stream' },
    { key: 'stream:trimmed', encoding: 'stream' },
    { key: 'stream:empty-with-group', encoding: 'stream' },
    { key: 'hll:sparse', encoding: 'raw' },
    { key: 'hll:dense', encoding: 'raw' },
    { key: 'bitmap:far', encoding: 'raw' },
    { key: 'geo:places', encoding: small.zset },
  ];
}

/**
 * Writes every type and encoding into each db (0, 1 and 15 by default). Values carry the db number, so
 * data copied into the wrong db does not compare equal. Deterministic apart from the relative TTLs.
 */
export async function seedEveryType(url: string, opts: SeedOptions = {}): Promise<SeedSummary> {
  const dbs = opts.dbs ?? SEED_DBS;
  const keysPerDb: Record<number, number> = {};
  for (const [i, db] of dbs.entries()) {
    const client = connect(url, db);
    try {
      const keys = new Set<string>();
      const w = new Writer(client, keys);
      const version = versionNumber(/^redis_version:(\S+)/m.exec(await client.info('server'))?.[1] ?? '');
      writeStrings(w, db);
      writeCollections(w, db);
      writeStreams(w, db, version);
      writeTtlsAndPrefixes(w, db);
      await w.flush();
      if (opts.big && i === 0) await writeBig(client, keys);
      keysPerDb[db] = keys.size;
    } finally {
      client.disconnect();
    }
  }
  return { keysPerDb, keys: Object.values(keysPerDb).reduce((a, b) => a + b, 0) };
}

function writeStrings(w: Writer, db: number): void {
  const tag = `db${db}`;
  w.cmd('set', 'str:raw', `${tag}:`.padEnd(100, 'r'));
  w.cmd('set', 'str:large', `${tag}:`.padEnd(100_000, 'L'));
  w.cmd('set', 'str:int', String(1_000_000 + db));
  w.cmd('set', 'str:int-min', '-9223372036854775808');
  w.cmd('set', 'str:embstr', `hello ${tag}`);
  w.cmd('set', 'str:leading-zero', `00${db}`);
  w.cmd('set', 'str:float', `3.14${db}`);
  w.cmd('set', 'str:empty', '');
  w.cmd('set', '', `the empty key name in ${tag}`);
  w.cmd('set', BINARY_KEY, Buffer.concat([BINARY_VALUE, Buffer.from([db])]));
  w.cmd('set', 'str:binary-value', Buffer.concat([Buffer.from([db]), BINARY_VALUE]));
  w.cmd('set', 'key with spaces\r\nand a newline', tag);
  w.cmd('set', 'ключ:ünïcödé:🔑', `значение ${tag}`);
  w.cmd('setbit', 'bitmap:far', FAR_BIT_OFFSET, 1);
  w.cmd('setbit', 'bitmap:far', db, 1);
  w.cmd('setbit', 'bitmap:small', 7, 1);
  w.cmd('setbit', 'bitmap:small', 100 + db, 1);
  w.cmd('pfadd', 'hll:sparse', ...range(10).map((i) => `${tag}:${i}`));
  // Past hll-sparse-max-bytes (3000) the sparse representation is promoted to dense.
  for (let start = 0; start < 5000; start += 1000) {
    w.cmd('pfadd', 'hll:dense', ...range(1000).map((i) => `${tag}:${start + i}`));
  }
}

function writeCollections(w: Writer, db: number): void {
  const tag = `db${db}`;
  w.cmd('rpush', 'list:small', 'a', 'b', tag, '', BINARY_VALUE);
  w.cmd('rpush', 'list:quicklist', ...range(300).map((i) => `${tag}:item:${i}`));
  // Elements beyond list-max-listpack-size (8 KiB per node) force one quicklist node each.
  w.cmd('rpush', 'list:large-elements', ...range(5).map((i) => `${tag}:${i}:`.padEnd(20_000, 'e')));
  w.cmd('sadd', 'set:intset', db, -1, ...range(50));
  w.cmd('sadd', 'set:hashtable', ...range(20).map((i) => `${tag}:member:${i}`));
  // Past set-max-intset-entries (512) an integer set becomes a hashtable.
  w.cmd('sadd', 'set:large-intset', ...range(1000).map((i) => i * 7 + db));
  w.cmd('sadd', 'set:listpack', 'red', 'green', 'blue', tag);
  w.cmd('sadd', 'set:binary', BINARY_VALUE, Buffer.from([db, 0xff]), '');
  w.cmd('zadd', 'zset:listpack', -1.5, 'minus', 0, tag, 1e-10, 'tiny', 42, 'answer');
  // Past zset-max-listpack-entries (128) a sorted set becomes a skiplist.
  w.cmd(
    'zadd',
    'zset:skiplist',
    '-inf',
    'bottom',
    'inf',
    'top',
    ...range(200).flatMap((i) => [i / 3, `${tag}:${i}`]),
  );
  // A member longer than zset-max-listpack-value (64 bytes) forces the skiplist.
  w.cmd('zadd', 'zset:long-member', 1, 'short', 2, `${tag}:`.padEnd(100, 'm'));
  w.cmd('hset', 'hash:listpack', 'name', tag, 'empty', '', 'count', 7);
  // Past hash-max-listpack-entries (512) a hash becomes a hashtable.
  w.cmd('hset', 'hash:hashtable', ...range(1000).flatMap((i) => [`field:${i}`, `${tag}:value:${i}`]));
  // A value longer than hash-max-listpack-value (64 bytes) forces the hashtable.
  w.cmd('hset', 'hash:long-value', 'short', '1', 'long', `${tag}:`.padEnd(100, 'h'));
  w.cmd('hset', 'hash:binary', BINARY_VALUE, Buffer.from([db, 0x80]), Buffer.from([0xfe]), BINARY_VALUE);
  w.cmd('geoadd', 'geo:places', 13.361389, 38.115556, 'Palermo', 15.087269, 37.502669, 'Catania');
  w.cmd('geoadd', 'geo:places', -0.1275 + db / 100, 51.507222, tag);
}

/** `version`: the server's redis_version as a number; before 6.2 no XGROUP CREATECONSUMER, no XTRIM `=`. */
function writeStreams(w: Writer, db: number, version: number): void {
  const since62 = version === 0 || version >= 60200;
  const tag = `db${db}`;
  const base = 1_700_000_000_000 + db;
  for (let i = 0; i < 50; i++) w.cmd('xadd', 'stream:groups', `${base}-${i}`, 'n', i, 'db', tag);
  w.call('xgroup', 'create', 'stream:groups', 'readers', '0');
  w.call('xgroup', 'create', 'stream:groups', 'late', '$');
  if (since62) {
    w.call('xgroup', 'createconsumer', 'stream:groups', 'readers', 'idle-carol');
    w.call('xgroup', 'createconsumer', 'stream:groups', 'late', 'waiting-dave');
  }
  // Read without ACK so both consumers keep pending entries; ACK a few so the PEL has holes.
  w.call('xreadgroup', 'GROUP', 'readers', 'alice', 'COUNT', 10, 'STREAMS', 'stream:groups', '>');
  w.call('xreadgroup', 'GROUP', 'readers', 'bob', 'COUNT', 5, 'STREAMS', 'stream:groups', '>');
  w.cmd('xack', 'stream:groups', 'readers', `${base}-0`, `${base}-3`, `${base}-11`);
  // Reading the history again raises the delivery count of alice's first pending entries.
  w.call('xreadgroup', 'GROUP', 'readers', 'alice', 'COUNT', 3, 'STREAMS', 'stream:groups', '0');

  for (let i = 1; i <= 20; i++) w.cmd('xadd', 'stream:deleted', `${base}-${i}`, 'n', i, 'db', tag);
  // Deleting the first and the last entry moves first-entry and max-deleted-entry-id.
  w.cmd('xdel', 'stream:deleted', `${base}-1`, `${base}-5`, `${base}-6`, `${base}-20`);

  for (let i = 1; i <= 100; i++) w.cmd('xadd', 'stream:trimmed', `${base}-${i}`, 'n', i);
  w.cmd('xtrim', 'stream:trimmed', 'MAXLEN', ...(since62 ? ['='] : []), 10);
  w.cmd('pexpire', 'stream:trimmed', 4 * HOUR_MS);

  w.call('xgroup', 'create', 'stream:empty-with-group', 'g', '$', 'MKSTREAM');
  w.recordKey('stream:empty-with-group');
}

function writeTtlsAndPrefixes(w: Writer, db: number): void {
  const tag = `db${db}`;
  w.cmd('set', 'ttl:pexpire', tag);
  w.cmd('pexpire', 'ttl:pexpire', 3 * HOUR_MS + 1);
  w.cmd('set', 'ttl:pexpireat', tag);
  w.cmd('pexpireat', 'ttl:pexpireat', PEXPIREAT_MS + db);
  w.cmd('hset', 'ttl:hash', 'f', tag);
  w.cmd('pexpire', 'ttl:hash', 2 * HOUR_MS + 7);
  for (let i = 1; i <= 20; i++) {
    w.cmd('hset', `user:${i}`, 'name', `user ${i}`, 'email', `u${i}@example.com`, 'db', tag);
    w.cmd('set', `order:${i}`, JSON.stringify({ id: i, user: i % 7, total: i * 9.99, db }));
    w.cmd('set', `cache:${i}`, `${tag}:cached:${i}`);
    w.cmd('pexpire', `cache:${i}`, HOUR_MS + i * 1001);
  }
}

async function writeBig(client: Redis, keys: Set<string>): Promise<void> {
  const batch = 1000;
  let pipeline = client.pipeline();
  for (let start = 0; start < BIG_COUNT; start += batch) {
    const end = Math.min(BIG_COUNT, start + batch);
    const fields: string[] = [];
    const elements: string[] = [];
    for (let i = start; i < end; i++) {
      fields.push(`field:${i}`, `value:${i}`);
      elements.push(`element:${i}`);
    }
    pipeline.hset(BIG_HASH, ...fields);
    pipeline.rpush(BIG_LIST, ...elements);
    if (pipeline.length >= 100) {
      await execChecked(pipeline);
      pipeline = client.pipeline();
    }
  }
  await execChecked(pipeline);
  keys.add(BIG_HASH);
  keys.add(BIG_LIST);
}

type Arg = string | Buffer | number;

/** Queues commands on a pipeline and remembers every key written (by its bytes). */
class Writer {
  private readonly client: Redis;
  private readonly keys: Set<string>;
  private pipeline: ReturnType<Redis['pipeline']>;

  constructor(client: Redis, keys: Set<string>) {
    this.client = client;
    this.keys = keys;
    this.pipeline = client.pipeline();
  }

  /** A command whose first argument is the key it writes. */
  cmd(name: string, key: string | Buffer, ...args: Arg[]): void {
    this.recordKey(key);
    this.pipeline.call(name, key, ...args);
  }

  /** A command on keys already recorded (or recorded with recordKey). */
  call(name: string, ...args: Arg[]): void {
    this.pipeline.call(name, ...args);
  }

  recordKey(key: string | Buffer): void {
    this.keys.add(Buffer.from(key).toString('latin1'));
  }

  async flush(): Promise<void> {
    const pipeline = this.pipeline;
    this.pipeline = this.client.pipeline();
    await execChecked(pipeline);
  }
}

async function execChecked(pipeline: ReturnType<Redis['pipeline']>): Promise<void> {
  const results = (await pipeline.exec()) ?? [];
  const failed = results.find(([err]) => err);
  if (failed) throw new Error(`seed: a pipelined command failed: ${failed[0]?.message}`);
}

/**
 * Writes `count` keys fast by piping generated RESP into `redis-cli --pipe` (about 4x faster than an
 * ioredis pipeline at 1M keys: ~2 s against ~8 s here).
 */
export async function seedManyKeys(url: string, opts: SeedManyOptions): Promise<void> {
  const { db = 0, count, valueBytes = 32, prefix = 'key:', mixed = false } = opts;
  const target = parseUrl(url);
  const args = ['-h', target.host, '-p', String(target.port), '--pipe'];
  if (target.username) args.push('--user', target.username);
  const child = spawn('redis-cli', args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    // REDISCLI_AUTH keeps the password out of the process list.
    env: target.password ? { ...process.env, REDISCLI_AUTH: target.password } : process.env,
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });

  const prefixBytes = Buffer.byteLength(prefix);
  const value = (i: number, n: number) => `${n}:${i}:`.padEnd(valueBytes, 'x').slice(0, valueBytes);
  const bulk = (s: string, len = s.length) => `$${len}\r\n${s}\r\n`;
  const keyArg = (i: number) => {
    const suffix = String(i);
    return `$${prefixBytes + suffix.length}\r\n${prefix}${suffix}\r\n`;
  };
  const v = (i: number, n: number) => bulk(value(i, n), valueBytes);
  const command = (i: number): string => {
    if (!mixed) return `*3\r\n$3\r\nSET\r\n${keyArg(i)}${v(i, 0)}`;
    switch (i % 5) {
      case 0:
        return `*3\r\n$3\r\nSET\r\n${keyArg(i)}${v(i, 0)}`;
      case 1:
        return `*8\r\n$4\r\nHSET\r\n${keyArg(i)}$2\r\nf1\r\n${v(i, 1)}$2\r\nf2\r\n${v(i, 2)}$2\r\nf3\r\n${v(i, 3)}`;
      case 2:
        return `*5\r\n$5\r\nRPUSH\r\n${keyArg(i)}${v(i, 1)}${v(i, 2)}${v(i, 3)}`;
      case 3:
        return `*5\r\n$4\r\nSADD\r\n${keyArg(i)}${v(i, 1)}${v(i, 2)}${v(i, 3)}`;
      default:
        return `*8\r\n$4\r\nZADD\r\n${keyArg(i)}$1\r\n1\r\n${v(i, 1)}$1\r\n2\r\n${v(i, 2)}$1\r\n3\r\n${v(i, 3)}`;
    }
  };

  // Without a listener an EPIPE between writes would crash the process; the exit status reports it instead.
  child.stdin.on('error', () => undefined);
  const write = async (data: string) => {
    // once() rejects on 'error', so a redis-cli that died early (EPIPE) fails the seed instead of hanging.
    if (!child.stdin.write(data)) await once(child.stdin, 'drain');
  };
  try {
    // SELECT travels in the stream itself, so the db does not depend on redis-cli's -n handling.
    await write(`*2\r\n$6\r\nSELECT\r\n${bulk(String(db))}`);
    for (let start = 0; start < count; start += 10_000) {
      let chunk = '';
      for (let i = start; i < Math.min(count, start + 10_000); i++) chunk += command(i);
      await write(chunk);
    }
    child.stdin.end();
  } catch (e) {
    child.kill();
    await exited.catch(() => undefined);
    throw new Error(`seedManyKeys: redis-cli --pipe stopped reading: ${output.trim()}`, { cause: e });
  }
  const code = await exited;
  const errors = /errors: (\d+), replies: (\d+)/.exec(output);
  if (code !== 0 || !errors || errors[1] !== '0') {
    throw new Error(
      `seedManyKeys: redis-cli --pipe failed (exit ${code}): ${output.trim().split('\n').pop()}`,
    );
  }
}

interface ParsedUrl {
  host: string;
  port: number;
  username?: string;
  password?: string;
}

function parseUrl(url: string): ParsedUrl {
  const u = new URL(url);
  if (u.protocol !== 'redis:') throw new Error(`seedManyKeys supports redis:// URLs only, not ${u.protocol}`);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
  };
}

/** A client that fails instead of reconnecting forever: test helpers should surface a dead server. */
function connect(url: string, db: number): Redis {
  return new Redis(url, { db, protocol: 2, maxRetriesPerRequest: 0, retryStrategy: () => null });
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

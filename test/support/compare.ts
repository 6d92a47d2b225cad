import { Redis } from 'ioredis';
import {
  hasPexpiretime as serverHasPexpiretime,
  versionNumber,
  zsetDigestScores,
} from '../../lib/redis/server-versions.ts';
import { debugCommandFor } from './redis-server.ts';

export type DifferenceReason = 'missing' | 'extra' | 'value' | 'ttl';

export interface KeyDifference {
  /** The source db of the compared pair (for 'extra', the key lives in that pair's target db). */
  db: number;
  /** Printable: valid UTF-8 is kept, control characters and other bytes are escaped (\n, \xff). */
  key: string;
  reason: DifferenceReason;
  detail?: string;
}

export interface DbCounts {
  db: number;
  targetDb: number;
  sourceKeys: number;
  targetKeys: number;
}

export interface Comparison {
  equal: boolean;
  /** DEBUG DIGEST of each whole server (every db), whatever dbs were compared. */
  digests: { source: string; target: string };
  perDb: DbCounts[];
  /** The first `maxNamed` differences found. */
  differences: KeyDifference[];
  /** Every difference found, named or not. */
  differenceCount: number;
  summary(): string;
}

export interface CompareOptions {
  /** Compare only these source dbs, each against the same db number unless dbMap says otherwise. */
  dbs?: number[];
  /** Source db -> target db. Without dbs, every db in the map is compared. */
  dbMap?: Record<number, number>;
  /** How many differences to name (default 20); all are counted. */
  maxNamed?: number;
  /**
   * Whole-server only: trust DEBUG DIGEST and key counts and skip the key-by-key pass. Faster on huge
   * datasets, but blind to TTL values and stream consumer groups, which DEBUG DIGEST does not cover.
   */
  digestOnly?: boolean;
  /**
   * Expiries may differ by this many ms (default 0: exactly equal). For a relative expiry of a pre-7.0
   * source, which can only be placed within the estimate of the source's clock.
   */
  ttlToleranceMs?: number;
}

/**
 * How far apart two expiries may be when a server before 7.0 (no PEXPIRETIME) is involved: redis-dts
 * copies its expiries as PTTL + TIME, each truncated to the ms (up to 1 ms late), and this comparison
 * reads them the same way (up to 1 ms early per server). Between two servers with PEXPIRETIME: 0.
 */
export const PTTL_READ_TOLERANCE_MS = 3;

const SCAN_COUNT = 1000;

/** One round trip per batch, about twice as fast as a pipeline of PEXPIRETIME. */
const EXPIRES_SCRIPT = `
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('PEXPIRETIME', key) end
return out`;

/** The same before Redis 7.0: PTTL plus TIME read just before it, per key (-1 none, -2 missing). */
export const LEGACY_EXPIRES_SCRIPT = `
local out = {}
for i, key in ipairs(KEYS) do
  local t = redis.call('TIME')
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then out[i] = ttl else out[i] = t[1] * 1000 + math.floor(t[2] / 1000) + ttl end
end
return out`;

/**
 * Compares source and target: the whole server by default, or the given dbs / db mapping key by key.
 *
 * DEBUG DIGEST covers keys, types and values, but of expiries only whether a key has one (measured on
 * 7.0: changing a TTL leaves it unchanged), and of streams only the entries, not groups, consumers, PEL
 * or last id. So equal digests alone do not prove an exact copy: a key-by-key pass adds PEXPIRETIME and
 * XINFO STREAM FULL. Servers before 7.0 (no PEXPIRETIME) have their expiries read as PTTL + TIME and
 * compared within PTTL_READ_TOLERANCE_MS; streams are compared on the XINFO fields both servers report
 * (7.0 added entries-added, max-deleted-entry-id, recorded-first-entry-id, a group's entries-read and lag).
 */
export async function compareServers(
  sourceUrl: string,
  targetUrl: string,
  opts: CompareOptions = {},
): Promise<Comparison> {
  const whole = !opts.dbs && !opts.dbMap;
  await Promise.all([reclaimExpired(sourceUrl), reclaimExpired(targetUrl)]);
  const [sourceDigest, targetDigest, sourceSpace, targetSpace] = await Promise.all([
    serverDigest(sourceUrl),
    serverDigest(targetUrl),
    keyspace(sourceUrl),
    keyspace(targetUrl),
  ]);
  const pairs = whole ? wholeServerPairs(sourceSpace, targetSpace) : selectedPairs(opts);
  const perDb = pairs.map(([db, targetDb]) => ({
    db,
    targetDb,
    sourceKeys: sourceSpace[db]?.keys ?? 0,
    targetKeys: targetSpace[targetDb]?.keys ?? 0,
  }));
  const found = new Differences(opts.maxNamed ?? 20);
  // A later test may start another server version on the same port: ask again for each comparison.
  versionByUrl.clear();
  const [sourceExact, targetExact] = await Promise.all([
    hasPexpiretime(sourceUrl),
    hasPexpiretime(targetUrl),
  ]);
  const tolerance = (opts.ttlToleranceMs ?? 0) + (sourceExact && targetExact ? 0 : PTTL_READ_TOLERANCE_MS);
  // Across 7.2 DEBUG DIGEST hashes sorted-set scores differently: equal data can have unequal digests,
  // so then every key is compared (sorted sets by their members and scores) and the digests are not.
  const comparable = await digestsComparable(sourceUrl, targetUrl);
  const digestsEqual = sourceDigest === targetDigest;
  if (!(whole && opts.digestOnly)) {
    for (const p of perDb) {
      // Equal whole-server digests already prove keys and values; expiry times still need reading,
      // unless neither side has any.
      const proven = whole && digestsEqual;
      const volatile = (sourceSpace[p.db]?.expires ?? 0) + (targetSpace[p.targetDb]?.expires ?? 0) > 0;
      await compareDb(
        { sourceUrl, targetUrl, ...p, values: !proven, ttls: !proven || volatile, tolerance, comparable },
        found,
      );
    }
  }
  const countsEqual = perDb.every((p) => p.sourceKeys === p.targetKeys);
  const equal = found.count === 0 && countsEqual && (!whole || digestsEqual || !comparable);
  const comparison: Comparison = {
    equal,
    digests: { source: sourceDigest, target: targetDigest },
    perDb,
    differences: found.named,
    differenceCount: found.count,
    summary: () => summarize(comparison, whole),
  };
  return comparison;
}

/** Resolves with the comparison when equal; otherwise throws an Error whose message is its summary. */
export async function assertSameData(
  sourceUrl: string,
  targetUrl: string,
  opts: CompareOptions = {},
): Promise<Comparison> {
  const comparison = await compareServers(sourceUrl, targetUrl, opts);
  if (!comparison.equal) throw new Error(comparison.summary());
  return comparison;
}

/** Keys per db from INFO keyspace (dbs without keys are absent). */
export async function keyCounts(url: string): Promise<Record<number, number>> {
  const space = await keyspace(url);
  return Object.fromEntries(Object.entries(space).map(([db, { keys }]) => [db, keys]));
}

/** INFO keyspace: keys and keys with an expiry, per db. */
export async function keyspace(url: string): Promise<Record<number, { keys: number; expires: number }>> {
  const client = connect(url, 0);
  try {
    const info = await client.info('keyspace');
    const space: Record<number, { keys: number; expires: number }> = {};
    for (const m of info.matchAll(/^db(\d+):keys=(\d+),expires=(\d+)/gm)) {
      space[Number(m[1])] = { keys: Number(m[2]), expires: Number(m[3]) };
    }
    return space;
  } finally {
    client.disconnect();
  }
}

/**
 * Removes keys whose expiry has passed but that Redis has not reclaimed yet (active expiry only samples),
 * so key counts and DEBUG DIGEST do not depend on when each server's sampling ran: SCAN expires every
 * key it meets. Only dbs that hold keys with an expiry are scanned.
 */
async function reclaimExpired(url: string): Promise<void> {
  const space = await keyspace(url);
  for (const [db, { expires }] of Object.entries(space)) {
    if (expires === 0) continue;
    const client = connect(url, Number(db));
    try {
      let cursor = '0';
      do {
        [cursor] = await client.scan(cursor, 'COUNT', 1000);
      } while (cursor !== '0');
    } finally {
      client.disconnect();
    }
  }
}

export async function serverDigest(url: string): Promise<string> {
  const client = connect(url, 0);
  try {
    return String(await client.call(debugName(client), 'DIGEST'));
  } finally {
    client.disconnect();
  }
}

/** Escapes a key name for messages: UTF-8 stays readable, anything else becomes \xHH. */
export function printableKey(key: Buffer): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(key);
  } catch {
    text = key.toString('latin1');
    return [...text].map((c) => escapeChar(c, true)).join('');
  }
  return [...text].map((c) => escapeChar(c, false)).join('');
}

function escapeChar(c: string, bytes: boolean): string {
  const code = c.codePointAt(0) ?? 0;
  if (c === '\\' || c === '"') return `\\${c}`;
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  if (code < 0x20 || code === 0x7f || (bytes && code > 0x7e))
    return `\\x${code.toString(16).padStart(2, '0')}`;
  return c;
}

function wholeServerPairs(a: Record<number, unknown>, b: Record<number, unknown>): Array<[number, number]> {
  const dbs = new Set([...Object.keys(a), ...Object.keys(b)].map(Number));
  return [...dbs].sort((x, y) => x - y).map((db) => [db, db]);
}

function selectedPairs(opts: CompareOptions): Array<[number, number]> {
  const dbs = opts.dbs ?? Object.keys(opts.dbMap ?? {}).map(Number);
  return dbs.map((db) => [db, opts.dbMap?.[db] ?? db]);
}

interface DbPass {
  sourceUrl: string;
  db: number;
  targetUrl: string;
  targetDb: number;
  /** Key counts from INFO keyspace before the pass. */
  sourceKeys: number;
  targetKeys: number;
  /** Compare every value (DEBUG DIGEST-VALUE): false when equal server digests already prove them. */
  values: boolean;
  /** Compare every expiry time (PEXPIRETIME). */
  ttls: boolean;
  /** ms two expiry times may differ by. */
  tolerance: number;
  /** DEBUG DIGEST-VALUE means the same on both servers (see digestsComparable). */
  comparable: boolean;
}

async function compareDb(pass: DbPass, found: Differences): Promise<void> {
  const source = connect(pass.sourceUrl, pass.db);
  const target = connect(pass.targetUrl, pass.targetDb);
  try {
    if (pass.values || pass.ttls) {
      const missing = await compareSourceKeys(source, target, pass, found);
      if (pass.values && !(await cannotHoldExtras(source, target, pass, missing))) {
        await findExtraKeys(source, target, pass, found);
      }
    }
    await compareStreams(source, target, pass.db, found);
  } finally {
    source.disconnect();
    target.disconnect();
  }
}

/** Looks up every source key on the target; returns how many are missing there. */
async function compareSourceKeys(
  source: Redis,
  target: Redis,
  pass: DbPass,
  found: Differences,
): Promise<number> {
  const { db } = pass;
  let missing = 0;
  for await (const keys of source.scanBufferStream({ count: SCAN_COUNT }) as AsyncIterable<Buffer[]>) {
    if (keys.length === 0) continue;
    const [s, t] = await Promise.all([
      inspect(source, keys, pass.values),
      inspect(target, keys, pass.values),
    ]);
    for (const [i, key] of keys.entries()) {
      const sk = s[i]!;
      const tk = t[i]!;
      // A key that vanished from the source since SCAN (expired, or written to meanwhile) is no evidence.
      if (sk.expireAt === MISSING) continue;
      if (tk.expireAt === MISSING) {
        missing++;
        found.add(db, key, 'missing');
        continue;
      }
      if (sk.digest !== tk.digest && (pass.comparable || !(await sameSortedSet(source, target, key))))
        found.add(db, key, 'value', await describeValueDifference(source, target, key));
      if (!sameExpiry(sk.expireAt, tk.expireAt, pass.tolerance)) {
        found.add(
          db,
          key,
          'ttl',
          `expires ${expiry(sk.expireAt)} on the source, ${expiry(tk.expireAt)} on the target`,
        );
      }
    }
  }
  return missing;
}

/** Every source key is on the target and the counts match (and did not move), so no other key can be. */
async function cannotHoldExtras(
  source: Redis,
  target: Redis,
  pass: DbPass,
  missing: number,
): Promise<boolean> {
  if (missing > 0 || pass.sourceKeys !== pass.targetKeys) return false;
  const [sourceNow, targetNow] = await Promise.all([source.dbsize(), target.dbsize()]);
  return sourceNow === pass.sourceKeys && targetNow === pass.targetKeys;
}

async function findExtraKeys(source: Redis, target: Redis, pass: DbPass, found: Differences): Promise<void> {
  for await (const keys of target.scanBufferStream({ count: SCAN_COUNT }) as AsyncIterable<Buffer[]>) {
    if (keys.length === 0) continue;
    const s = await inspect(source, keys, false);
    for (const [i, key] of keys.entries()) {
      if (s[i]!.expireAt === MISSING)
        found.add(pass.db, key, 'extra', `not on the source (target db ${pass.targetDb})`);
    }
  }
}

async function compareStreams(source: Redis, target: Redis, db: number, found: Differences): Promise<void> {
  const streams = source.scanBufferStream({ count: SCAN_COUNT, type: 'stream' }) as AsyncIterable<Buffer[]>;
  for await (const keys of streams) {
    for (const key of keys) {
      const detail = await compareStreamMetadata(source, target, key);
      if (detail) found.add(db, key, 'value', detail);
    }
  }
}

const MISSING = -2;

function sameExpiry(a: number, b: number, tolerance: number): boolean {
  if (a < 0 || b < 0) return a === b;
  return Math.abs(a - b) <= tolerance;
}

const versionByUrl = new Map<string, Promise<number>>();

/** The server's redis_version as a number, asked once per URL and comparison. */
function serverVersion(url: string): Promise<number> {
  let known = versionByUrl.get(url);
  if (!known) {
    const client = connect(url, 0);
    known = client
      .info('server')
      .then((info) => versionNumber(/^redis_version:(\S+)/m.exec(info)?.[1] ?? ''))
      .finally(() => client.disconnect());
    versionByUrl.set(url, known);
  }
  return known;
}

/** Whether the server has PEXPIRETIME (7.0+). */
async function hasPexpiretime(url: string): Promise<boolean> {
  return serverHasPexpiretime(await serverVersion(url));
}

/** Both servers' DEBUG DIGEST print sorted-set scores alike (both before 7.2, or both after). */
async function digestsComparable(sourceUrl: string, targetUrl: string): Promise<boolean> {
  const [a, b] = await Promise.all([serverVersion(sourceUrl), serverVersion(targetUrl)]);
  return zsetDigestScores(a) === zsetDigestScores(b);
}

/** A ZRANGE WITHSCORES score as a double ('inf' and '-inf' included). */
function score(reply: Buffer): number {
  const text = reply.toString().toLowerCase();
  if (text === 'inf' || text === '+inf') return Number.POSITIVE_INFINITY;
  if (text === '-inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

/** Sorted sets of servers whose digests differ by design: the same members with the same scores (as doubles). */
async function sameSortedSet(source: Redis, target: Redis, key: Buffer): Promise<boolean> {
  if ((await source.type(key)) !== 'zset' || (await target.type(key)) !== 'zset') return false;
  const [a, b] = (await Promise.all([
    source.callBuffer('ZRANGE', key, '0', '-1', 'WITHSCORES'),
    target.callBuffer('ZRANGE', key, '0', '-1', 'WITHSCORES'),
  ])) as [Buffer[], Buffer[]];
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 2) {
    if (!a[i]!.equals(b[i]!) || score(a[i + 1]!) !== score(b[i + 1]!)) return false;
  }
  return true;
}

interface KeyState {
  /** PEXPIRETIME: absolute ms, -1 without expiry, -2 when missing. */
  expireAt: number;
  /** DEBUG DIGEST-VALUE (covers the type too), when asked for. */
  digest?: string;
}

async function inspect(client: Redis, keys: Buffer[], withDigest: boolean): Promise<KeyState[]> {
  const pipeline = client.pipeline();
  pipeline.eval(
    (await hasPexpiretime(urlOf(client))) ? EXPIRES_SCRIPT : LEGACY_EXPIRES_SCRIPT,
    keys.length,
    ...keys,
  );
  if (withDigest) pipeline.call(debugName(client), 'DIGEST-VALUE', ...keys);
  const results = (await pipeline.exec()) ?? [];
  for (const [err] of results) if (err) throw err;
  const expires = results[0]?.[1] as number[];
  const digests = (results[1]?.[1] ?? []) as string[];
  return keys.map((_, i) => ({ expireAt: Number(expires[i]), digest: digests[i] }));
}

async function describeValueDifference(source: Redis, target: Redis, key: Buffer): Promise<string> {
  const [a, b] = await Promise.all([source.type(key), target.type(key)]);
  return a === b ? `${a} values differ (DEBUG DIGEST-VALUE)` : `a ${a} on the source, a ${b} on the target`;
}

/** Seen/active times are left out: a replica sets them when it applies the commands, not the source. */
const VOLATILE_STREAM_FIELDS = new Set(['seen-time', 'active-time', 'radix-tree-keys', 'radix-tree-nodes']);
/** XINFO STREAM FULL fields Redis 7.0 added (of the stream, and of each group). */
const STREAM_FIELDS_SINCE_7 = [
  'entries-added',
  'max-deleted-entry-id',
  'recorded-first-entry-id',
  'entries-read',
  'lag',
];

async function compareStreamMetadata(source: Redis, target: Redis, key: Buffer): Promise<string | undefined> {
  // Not a stream on the target: already reported as missing or as a value difference.
  if ((await target.type(key)) !== 'stream') return undefined;
  // A server before 7.0 does not report 7.0's fields: they are left out of both sides then.
  const both = (await hasPexpiretime(urlOf(source))) && (await hasPexpiretime(urlOf(target)));
  const skip = both ? VOLATILE_STREAM_FIELDS : new Set([...VOLATILE_STREAM_FIELDS, ...STREAM_FIELDS_SINCE_7]);
  const [a, b] = await Promise.all([streamMetadata(source, key, skip), streamMetadata(target, key, skip)]);
  return firstDifference(a, b, 'stream metadata');
}

async function streamMetadata(client: Redis, key: Buffer, skip: ReadonlySet<string>): Promise<unknown> {
  // COUNT 0 lists the whole PEL; the entries themselves are already covered by the digest.
  const reply = await client.callBuffer('XINFO', 'STREAM', key, 'FULL', 'COUNT', 0);
  const info = toObject(plain(reply) as unknown[]);
  delete info.entries;
  for (const field of skip) delete info[field];
  info.groups = ((info.groups ?? []) as unknown[][]).map((g) => {
    const group = toObject(g);
    for (const field of skip) delete group[field];
    group.consumers = ((group.consumers ?? []) as unknown[][]).map((c) => {
      const consumer = toObject(c);
      for (const field of skip) delete consumer[field];
      return consumer;
    });
    return group;
  });
  return info;
}

function plain(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return printableKey(value);
  if (Array.isArray(value)) return value.map(plain);
  return value;
}

function toObject(pairs: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) out[String(pairs[i])] = pairs[i + 1];
  return out;
}

function firstDifference(a: unknown, b: unknown, path: string): string | undefined {
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    if (Array.isArray(a) !== Array.isArray(b)) return `${path}: shapes differ`;
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      const d = firstDifference(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`,
      );
      if (d) return d;
    }
    return undefined;
  }
  return a === b
    ? undefined
    : `${path}: ${JSON.stringify(a)} on the source, ${JSON.stringify(b)} on the target`;
}

function expiry(ms: number): string {
  if (ms === -1) return 'never';
  if (ms === -2) return '(key missing)';
  return `at ${ms} (${new Date(ms).toISOString()})`;
}

class Differences {
  readonly named: KeyDifference[] = [];
  count = 0;
  private readonly maxNamed: number;
  /** SCAN may return a key twice; each difference counts once. */
  private readonly seen = new Set<string>();

  constructor(maxNamed: number) {
    this.maxNamed = maxNamed;
  }

  add(db: number, key: Buffer, reason: DifferenceReason, detail?: string): void {
    const id = `${db} ${reason} ${key.toString('hex')}`;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.count++;
    if (this.named.length < this.maxNamed) this.named.push({ db, key: printableKey(key), reason, detail });
  }
}

function summarize(c: Comparison, whole: boolean): string {
  const scope = c.perDb.map((p) => (p.db === p.targetDb ? `db ${p.db}` : `db ${p.db}->${p.targetDb}`));
  if (c.equal) {
    const keys = c.perDb.reduce((n, p) => n + p.sourceKeys, 0);
    return `source and target hold the same data (${scope.join(', ') || 'no keys'}; ${keys} keys)`;
  }
  const lines = [
    `source and target differ: ${c.differenceCount} key difference(s)` +
      (c.differenceCount > c.differences.length ? ` (first ${c.differences.length} named)` : ''),
    `  DEBUG DIGEST: source ${c.digests.source}, target ${c.digests.target}` +
      (whole ? '' : ' (whole servers, informational)'),
  ];
  for (const p of c.perDb) {
    const mark = p.sourceKeys === p.targetKeys ? '' : '  <- counts differ';
    const name = p.db === p.targetDb ? `db ${p.db}` : `db ${p.db}->${p.targetDb}`;
    lines.push(`  ${name}: ${p.sourceKeys} keys on the source, ${p.targetKeys} on the target${mark}`);
  }
  for (const d of c.differences) {
    lines.push(`  db ${d.db} "${d.key}": ${d.reason}${d.detail ? ` (${d.detail})` : ''}`);
  }
  if (c.differenceCount === 0 && c.digests.source !== c.digests.target) {
    lines.push(
      '  the digests differ but no key differs: keys may have expired or been written during the comparison',
    );
  }
  return lines.join('\n');
}

/** The name DEBUG answers to behind each client (a managed profile renames it; see redis-server.ts). */
const debugNames = new WeakMap<Redis, string>();
const urls = new WeakMap<Redis, string>();

function connect(url: string, db: number): Redis {
  const client = new Redis(url, { db, protocol: 2, maxRetriesPerRequest: 0, retryStrategy: () => null });
  debugNames.set(client, debugCommandFor(url));
  urls.set(client, url);
  return client;
}

function urlOf(client: Redis): string {
  const url = urls.get(client);
  if (!url) throw new Error('compare.ts: a client not opened by connect()');
  return url;
}

function debugName(client: Redis): string {
  return debugNames.get(client) ?? 'DEBUG';
}

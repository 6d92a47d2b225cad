import type { RawConnection } from '../redis/raw-connection.ts';
import { type CommandArg, RespError, type RespValue } from '../redis/resp.ts';
import { expiryText, shown, sides } from './describe.ts';
import { ask } from './read-error.ts';
import type { ServerCaps } from './server-caps.ts';
import type { Finding } from './verify-types.ts';
import { compareLists, compareStrings, parseScore } from './whole-value.ts';

/** Two connections to one unit's dbs, used for one key at a time. */
export interface PagedContext {
  src: RawConnection;
  tgt: RawConnection;
  srcCaps: ServerCaps;
  tgtCaps: ServerCaps;
  ttlToleranceMs: number;
  /** Reply bytes read, both sides (for progress). */
  onBytes?: (n: number) => void;
}

/** A page aims at this many bytes on each side: memory stays bounded whatever the key's size. */
const PAGE_BYTES = 1024 * 1024;
const FIRST_PAGE = 128;
const MAX_PAGE = 10_000;

const CHANGED = 'the key changed type while it was compared';

/**
 * Compares a key of any size in pages, never holding more than a page per side.
 *
 * Lists and strings are read at the same offsets on both sides and compared in order. Hashes, sets and
 * sorted sets are unordered, and HSCAN/SSCAN/ZSCAN pages of equal values need not match between two
 * servers, so instead of hashing both sides each source page is looked up on the destination (HMGET,
 * SMISMEMBER, ZMSCORE): with equal cardinalities, "every source element is on the destination with the
 * same value" proves equality. Unlike an order-independent digest (a sum of element hashes), this is
 * exact, is not fooled by SCAN returning an element twice, and names the element that differs.
 */
export async function comparePaged(c: PagedContext, key: Buffer, type: string): Promise<Finding[]> {
  const detail = await compareValue(c, key, type);
  if (typeof detail === 'string') return [{ category: 'value', detail }];
  return detail ?? [];
}

async function compareValue(
  c: PagedContext,
  key: Buffer,
  type: string,
): Promise<string | Finding[] | undefined> {
  switch (type) {
    case 'string':
      return compareString(c, key);
    case 'list':
      return compareList(c, key);
    case 'hash':
      return compareHash(c, key);
    case 'set':
      return compareSet(c, key);
    case 'zset':
      return compareZset(c, key);
    default:
      return compareDumps(c, key, type);
  }
}

function both(c: PagedContext, command: readonly CommandArg[]): Promise<[RespValue, RespValue]> {
  return Promise.all([ask(c.src, command), ask(c.tgt, command)]);
}

/** Equal lengths, or what differs (a length of -1 means the key changed type meanwhile). */
async function lengths(
  c: PagedContext,
  command: string,
  key: Buffer,
  what: string,
): Promise<number | string> {
  const [s, t] = await both(c, [command, key]);
  if (s instanceof RespError || t instanceof RespError) return CHANGED;
  if (s !== t) return `${what} differ: ${sides(String(s), String(t))}`;
  return s as number;
}

function nextCount(elements: number, bytes: number): number {
  if (elements === 0) return FIRST_PAGE;
  const average = Math.max(1, bytes / elements);
  return Math.max(1, Math.min(MAX_PAGE, Math.floor(PAGE_BYTES / average)));
}

function bytesOf(items: readonly Buffer[]): number {
  let n = 0;
  for (const b of items) n += b.length;
  return n;
}

async function compareString(c: PagedContext, key: Buffer): Promise<string | undefined> {
  const length = await lengths(c, 'STRLEN', key, 'string lengths');
  if (typeof length === 'string') return length;
  for (let offset = 0; offset < length; offset += PAGE_BYTES) {
    const [s, t] = await both(c, ['GETRANGE', key, offset, offset + PAGE_BYTES - 1]);
    if (s instanceof RespError || t instanceof RespError) return CHANGED;
    c.onBytes?.((s as Buffer).length + (t as Buffer).length);
    const d = compareStrings(s as Buffer, t as Buffer);
    if (d) return d.replace(/from byte (\d+)/, (_, n: string) => `from byte ${offset + Number(n)}`);
  }
  return undefined;
}

async function compareList(c: PagedContext, key: Buffer): Promise<string | undefined> {
  const length = await lengths(c, 'LLEN', key, 'list lengths');
  if (typeof length === 'string') return length;
  let bytes = 0;
  for (let start = 0; start < length; ) {
    const count = nextCount(start, bytes);
    const [s, t] = await both(c, ['LRANGE', key, start, start + count - 1]);
    if (s instanceof RespError || t instanceof RespError) return CHANGED;
    const a = s as Buffer[];
    const b = t as Buffer[];
    const d = compareLists(a, b, start);
    if (d) return d.startsWith('list lengths') ? 'the list changed while it was compared' : d;
    const n = bytesOf(a);
    c.onBytes?.(n + bytesOf(b));
    bytes += n;
    start += a.length;
    if (a.length === 0) break;
  }
  return undefined;
}

/**
 * Walks SSCAN/HSCAN/ZSCAN of the source, the next page already requested while the current one is
 * checked on the destination; stops at the first difference.
 */
async function scanSource(
  c: PagedContext,
  command: 'HSCAN' | 'SSCAN' | 'ZSCAN',
  key: Buffer,
  check: (flat: Buffer[]) => Promise<string | Finding[] | undefined>,
): Promise<string | Finding[] | undefined> {
  let elements = 0;
  let bytes = 0;
  const page = (cursor: string) => ask(c.src, [command, key, cursor, 'COUNT', nextCount(elements, bytes)]);
  let pending: Promise<RespValue> | undefined = page('0');
  const found: Finding[] = [];
  try {
    while (pending) {
      const reply = await pending;
      pending = undefined;
      if (reply instanceof RespError) return CHANGED;
      const [cursor, flat] = reply as [Buffer, Buffer[]];
      elements += flat.length;
      bytes += bytesOf(flat);
      c.onBytes?.(bytesOf(flat));
      const next = String(cursor);
      if (next !== '0') pending = page(next);
      const d = await check(flat);
      if (typeof d === 'string') return d;
      // Field expiries: keep looking for a value difference, report the first expiry difference.
      if (d && found.length === 0) found.push(...d);
    }
  } finally {
    // An early return leaves a page in flight: its reply is not needed, and must not go unhandled.
    pending?.catch(() => undefined);
  }
  return found.length > 0 ? found : undefined;
}

async function compareHash(c: PagedContext, key: Buffer): Promise<string | Finding[] | undefined> {
  const length = await lengths(c, 'HLEN', key, 'hash sizes');
  if (typeof length === 'string') return length;
  const fieldTtl = c.srcCaps.fieldTtl || c.tgtCaps.fieldTtl;
  return scanSource(c, 'HSCAN', key, async (flat) => {
    const fields: Buffer[] = [];
    for (let i = 0; i < flat.length; i += 2) fields.push(flat[i]!);
    if (fields.length === 0) return undefined;
    const values = await ask(c.tgt, ['HMGET', key, ...fields]);
    if (values instanceof RespError) return CHANGED;
    const got = values as (Buffer | null)[];
    c.onBytes?.(bytesOf(got.filter((v): v is Buffer => v !== null)));
    for (let i = 0; i < fields.length; i++) {
      const want = flat[2 * i + 1]!;
      const have = got[i] ?? null;
      if (have === null) return `field ${shown(fields[i])} is on the source only`;
      if (!want.equals(have)) return `field ${shown(fields[i])} differs: ${sides(shown(want), shown(have))}`;
    }
    return fieldTtl ? compareFieldExpiries(c, key, fields) : undefined;
  });
}

/** Hash field expiries (Redis 7.4+): a side without the command has none. */
async function compareFieldExpiries(
  c: PagedContext,
  key: Buffer,
  fields: Buffer[],
): Promise<Finding[] | undefined> {
  const command = ['HPEXPIRETIME', key, 'FIELDS', fields.length, ...fields];
  const noExpiry = () => Promise.resolve(fields.map(() => -1) as RespValue);
  const [s, t] = await Promise.all([
    c.srcCaps.fieldTtl ? ask(c.src, command) : noExpiry(),
    c.tgtCaps.fieldTtl ? ask(c.tgt, command) : noExpiry(),
  ]);
  if (!Array.isArray(s) || !Array.isArray(t)) return undefined;
  for (let i = 0; i < fields.length; i++) {
    const a = Number(s[i]);
    const b = Number(t[i]);
    // -2: the field is gone meanwhile; a later round sees the settled state.
    if (a === -2 || b === -2) continue;
    if (a === b || (a >= 0 && b >= 0 && Math.abs(a - b) <= c.ttlToleranceMs)) continue;
    return [{ category: 'ttl', detail: `field ${shown(fields[i])}: ${sides(expiryText(a), expiryText(b))}` }];
  }
  return undefined;
}

async function compareSet(c: PagedContext, key: Buffer): Promise<string | undefined> {
  const length = await lengths(c, 'SCARD', key, 'set sizes');
  if (typeof length === 'string') return length;
  const d = await scanSource(c, 'SSCAN', key, async (members) => {
    if (members.length === 0) return undefined;
    const found = await memberFlags(c, key, members);
    if (found === undefined) return CHANGED;
    for (let i = 0; i < members.length; i++) {
      if (!found[i]) return `member ${shown(members[i])} is on the source only`;
    }
    return undefined;
  });
  return typeof d === 'string' ? d : undefined;
}

async function memberFlags(c: PagedContext, key: Buffer, members: Buffer[]): Promise<boolean[] | undefined> {
  if (c.tgtCaps.multiMember) {
    const r = await ask(c.tgt, ['SMISMEMBER', key, ...members]);
    return Array.isArray(r) ? r.map((v) => v === 1) : undefined;
  }
  const replies = await Promise.all(members.map((m) => ask(c.tgt, ['SISMEMBER', key, m])));
  return replies.some((r) => r instanceof RespError) ? undefined : replies.map((v) => v === 1);
}

async function compareZset(c: PagedContext, key: Buffer): Promise<string | undefined> {
  const length = await lengths(c, 'ZCARD', key, 'sorted set sizes');
  if (typeof length === 'string') return length;
  const d = await scanSource(c, 'ZSCAN', key, async (flat) => {
    const members: Buffer[] = [];
    for (let i = 0; i < flat.length; i += 2) members.push(flat[i]!);
    if (members.length === 0) return undefined;
    const scores = await targetScores(c, key, members);
    if (scores === undefined) return CHANGED;
    for (let i = 0; i < members.length; i++) {
      const have = scores[i] ?? null;
      if (have === null) return `member ${shown(members[i])} is on the source only`;
      if (parseScore(flat[2 * i + 1]!) !== parseScore(have)) {
        return `member ${shown(members[i])} has score ${sides(String(flat[2 * i + 1]), String(have))}`;
      }
    }
    return undefined;
  });
  return typeof d === 'string' ? d : undefined;
}

async function targetScores(
  c: PagedContext,
  key: Buffer,
  members: Buffer[],
): Promise<(Buffer | null)[] | undefined> {
  if (c.tgtCaps.multiMember) {
    const r = await ask(c.tgt, ['ZMSCORE', key, ...members]);
    return Array.isArray(r) ? (r as (Buffer | null)[]) : undefined;
  }
  const replies = await Promise.all(members.map((m) => ask(c.tgt, ['ZSCORE', key, m])));
  return replies.some((r) => r instanceof RespError) ? undefined : (replies as (Buffer | null)[]);
}

/** Types without read commands (modules): their DUMP payloads are all there is to compare. */
async function compareDumps(c: PagedContext, key: Buffer, type: string): Promise<string | undefined> {
  const [s, t] = await both(c, ['DUMP', key]);
  if (s === null || t === null) return s === t ? undefined : 'the key vanished while it was compared';
  const a = s as Buffer;
  const b = t as Buffer;
  c.onBytes?.(a.length + b.length);
  if (a.equals(b)) return undefined;
  const sameFormat = c.srcCaps.rdbFamily !== '' && c.srcCaps.rdbFamily === c.tgtCaps.rdbFamily;
  return (
    `${type} values differ byte for byte in their DUMP payloads (the only way to compare this type)` +
    (sameFormat
      ? ''
      : `; the servers run different versions (${sides(c.srcCaps.version, c.tgtCaps.version)})`)
  );
}

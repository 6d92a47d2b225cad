import { type CommandArg, RespError, type RespValue } from '../redis/resp.ts';
import { shown, sides } from './describe.ts';

/**
 * Values small enough to read whole (under the big-key threshold on both sides) are compared as data
 * when their DUMP payloads cannot be compared byte for byte (other RDB version) or differ (a hash table
 * serializes in its own iteration order, so equal sets can have different payloads).
 */
export const WHOLE_TYPES = new Set(['string', 'list', 'set', 'zset', 'hash']);

export function wholeValueCommand(type: string, key: Buffer): CommandArg[] {
  switch (type) {
    case 'string':
      return ['GET', key];
    case 'list':
      return ['LRANGE', key, 0, -1];
    case 'set':
      return ['SMEMBERS', key];
    case 'zset':
      return ['ZRANGE', key, 0, -1, 'WITHSCORES'];
    case 'hash':
      return ['HGETALL', key];
    default:
      throw new Error(`no whole-value read for type ${type}`);
  }
}

/** undefined when equal, else what differs. Replies are those of wholeValueCommand on each side. */
export function compareWholeValues(type: string, s: RespValue, t: RespValue): string | undefined {
  if (s instanceof RespError || t instanceof RespError) return 'the key changed type while it was compared';
  switch (type) {
    case 'string':
      return compareStrings(s as Buffer | null, t as Buffer | null);
    case 'list':
      return compareLists(s as Buffer[], t as Buffer[]);
    case 'set':
      return compareSets(s as Buffer[], t as Buffer[]);
    case 'zset':
      return compareZsets(s as Buffer[], t as Buffer[]);
    case 'hash':
      return compareHashes(s as Buffer[], t as Buffer[]);
    default:
      throw new Error(`no whole-value comparison for type ${type}`);
  }
}

/** Size of a reply's payload, for progress. */
export function replyBytes(v: RespValue): number {
  if (Buffer.isBuffer(v)) return v.length;
  if (Array.isArray(v)) {
    let n = 0;
    for (const x of v) n += replyBytes(x);
    return n;
  }
  return 0;
}

export function compareStrings(s: Buffer | null, t: Buffer | null): string | undefined {
  if (s === null || t === null) return s === t ? undefined : 'the key vanished while it was compared';
  if (s.equals(t)) return undefined;
  if (s.length !== t.length) return `string lengths differ: ${sides(s.length, t.length)}`;
  return `string values differ from byte ${firstDifferentByte(s, t)}`;
}

export function firstDifferentByte(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

export function compareLists(s: Buffer[], t: Buffer[], offset = 0): string | undefined {
  if (s.length !== t.length) return `list lengths differ: ${sides(s.length, t.length)}`;
  for (let i = 0; i < s.length; i++) {
    if (!s[i]!.equals(t[i]!)) return `list element ${offset + i} differs: ${sides(shown(s[i]), shown(t[i]))}`;
  }
  return undefined;
}

function compareSets(s: Buffer[], t: Buffer[]): string | undefined {
  if (s.length !== t.length) return `set sizes differ: ${sides(s.length, t.length)}`;
  const a = [...s].sort(Buffer.compare);
  const b = [...t].sort(Buffer.compare);
  for (let i = 0; i < a.length; i++) {
    const c = Buffer.compare(a[i]!, b[i]!);
    if (c < 0) return `member ${shown(a[i])} is on the source only`;
    if (c > 0) return `member ${shown(b[i])} is on the target only`;
  }
  return undefined;
}

/** ZRANGE orders by score, then member: equal sorted sets give the same sequence on both sides. */
function compareZsets(s: Buffer[], t: Buffer[]): string | undefined {
  if (s.length !== t.length) return `sorted set sizes differ: ${sides(s.length / 2, t.length / 2)}`;
  for (let i = 0; i < s.length; i += 2) {
    if (!s[i]!.equals(t[i]!)) {
      return `sorted sets differ at rank ${i / 2}: member ${sides(shown(s[i]), shown(t[i]))}`;
    }
    if (parseScore(s[i + 1]!) !== parseScore(t[i + 1]!)) {
      return `member ${shown(s[i])} has score ${sides(String(s[i + 1]), String(t[i + 1]))}`;
    }
  }
  return undefined;
}

function compareHashes(s: Buffer[], t: Buffer[]): string | undefined {
  if (s.length !== t.length) return `hash sizes differ: ${sides(s.length / 2, t.length / 2)}`;
  const a = pairsByField(s);
  const b = pairsByField(t);
  for (let i = 0; i < a.length; i++) {
    const c = Buffer.compare(a[i]![0], b[i]![0]);
    if (c < 0) return `field ${shown(a[i]![0])} is on the source only`;
    if (c > 0) return `field ${shown(b[i]![0])} is on the target only`;
    if (!a[i]![1].equals(b[i]![1])) {
      return `field ${shown(a[i]![0])} differs: ${sides(shown(a[i]![1]), shown(b[i]![1]))}`;
    }
  }
  return undefined;
}

function pairsByField(flat: Buffer[]): [Buffer, Buffer][] {
  const pairs: [Buffer, Buffer][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([flat[i]!, flat[i + 1]!]);
  return pairs.sort((x, y) => Buffer.compare(x[0], y[0]));
}

/**
 * Scores as doubles: ZSCAN, ZRANGE and ZMSCORE may format the same double differently (17 significant
 * digits or the shortest round-trip form), and `inf` is how Redis writes infinity.
 */
export function parseScore(v: Buffer | string | null): number {
  if (v === null) return Number.NaN;
  const s = String(v).toLowerCase();
  if (s === 'inf' || s === '+inf') return Number.POSITIVE_INFINITY;
  if (s === '-inf') return Number.NEGATIVE_INFINITY;
  return Number(s);
}

import { DUMP_FOOTER_BYTES } from '../replication/rdb/dump-payload.ts';
import { RdbCursor } from '../replication/rdb/rdb-cursor.ts';
import { TYPE } from '../replication/rdb/rdb-format.ts';

/**
 * Whether two DUMP payloads that differ byte for byte still hold one value, told from the payloads
 * alone. A set or hash in a hash table (RDB types SET and HASH) is serialized in its table's iteration
 * order, which depends on the server's random hash seed, so equal sets almost never have equal
 * payloads; reading them again with SMEMBERS or HGETALL on both sides cost the source more than the
 * DUMP did. Here the payloads' elements are compared as multisets of their encoded bytes instead.
 *
 * Only `true` is a verdict: equal encoded bytes decode to equal strings (int, LZF or raw), and a set's
 * members (a hash's fields) are distinct, so equal multisets are equal values. The same string may be
 * encoded differently on two servers (rdbcompression off on one of them), and any other payload type
 * or anything unexpected answers `false`: the caller then compares the values as data, as before.
 */
export function sameElements(a: Buffer, b: Buffer): boolean {
  const type = a[0];
  if (type !== b[0] || (type !== TYPE.SET && type !== TYPE.HASH)) return false;
  if (a.length !== b.length) return false;
  // The footer's RDB version (its CRC differs with the order): one format on both sides.
  const versionAt = a.length - DUMP_FOOTER_BYTES;
  if (a[versionAt] !== b[versionAt] || a[versionAt + 1] !== b[versionAt + 1]) return false;
  const perEntry = type === TYPE.HASH ? 2 : 1;
  const x = entries(a, perEntry);
  const y = entries(b, perEntry);
  if (!x || !y || x.length !== y.length) return false;
  if (x.length <= SMALL) return matchSmall(a, x, b, y);
  const order = (buf: Buffer) => (i: Range, j: Range) => compareRange(buf, i, j);
  const xi = sortedIndexes(x, order(a));
  const yi = sortedIndexes(y, order(b));
  for (let n = 0; n < xi.length; n++) {
    const p = x[xi[n]!]!;
    const q = y[yi[n]!]!;
    if (a.compare(b, q.start, q.end, p.start, p.end) !== 0) return false;
  }
  return true;
}

/** One entry's encoded bytes: a member, or a hash field with its value (the field's bytes first). */
interface Range {
  start: number;
  end: number;
  /** Where the field ends in a hash entry: entries sort by field, and fields are distinct. */
  keyEnd: number;
}

/** The entries' byte ranges, or undefined when the payload is not what its type byte says. */
function entries(buf: Buffer, perEntry: number): Range[] | undefined {
  const c = new RdbCursor();
  c.reset(buf, 1, buf.length - DUMP_FOOTER_BYTES);
  try {
    const n = c.length();
    // Each entry takes at least one byte per string: a larger count is a damaged payload.
    if (n * perEntry > c.end - c.pos) return undefined;
    const out: Range[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const start = c.pos;
      c.skipString();
      const keyEnd = c.pos;
      if (perEntry === 2) c.skipString();
      out[i] = { start, end: c.pos, keyEnd };
    }
    return c.pos === c.end ? out : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Up to this many entries, each of a's entries is looked for among b's (n² short comparisons, which
 * for the few members of most small sets cost less than sorting both).
 */
const SMALL = 8;

function matchSmall(a: Buffer, x: Range[], b: Buffer, y: Range[]): boolean {
  let used = 0;
  for (const p of x) {
    let found = false;
    for (let j = 0; j < y.length; j++) {
      if (used & (1 << j)) continue;
      const q = y[j]!;
      if (sameBytes(a, p.start, p.end, b, q.start, q.end)) {
        used |= 1 << j;
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

/** Byte ranges compared in JS: for the short ranges of small entries, cheaper than a native call. */
function sameBytes(a: Buffer, as: number, ae: number, b: Buffer, bs: number, be: number): boolean {
  if (ae - as !== be - bs) return false;
  for (let i = as, j = bs; i < ae; i++, j++) if (a[i] !== b[j]) return false;
  return true;
}

function sortedIndexes(ranges: Range[], compare: (i: Range, j: Range) => number): number[] {
  const idx = Array.from(ranges.keys());
  return idx.sort((i, j) => compare(ranges[i]!, ranges[j]!));
}

/** Orders entries by their first string (the member, or the hash field). */
function compareRange(buf: Buffer, i: Range, j: Range): number {
  return buf.compare(buf, j.start, j.keyEnd, i.start, i.keyEnd);
}

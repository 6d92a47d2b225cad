import type { RawConnection } from '../redis/raw-connection.ts';
import { encodeCommand, RespError, type RespValue } from '../redis/resp.ts';
import { sides } from './describe.ts';
import { encodeAll, encodeKeyCommands, encodeMixedKeyCommands, HEAD, send } from './key-commands.ts';
import { type ExpiryReads, probeBoth, ttlFinding } from './key-probe.ts';
import { comparePaged } from './paged-compare.ts';
import type { PagedPool } from './paged-pool.ts';
import { sameElements } from './payload-elements.ts';
import { readFailed } from './read-error.ts';
import type { ServerCaps } from './server-caps.ts';
import { compareStream } from './stream-compare.ts';
import type { Finding } from './verify-types.ts';
import { compareWholeValues, replyBytes, WHOLE_TYPES, wholeValueCommand } from './whole-value.ts';

/** The connections and settings one unit's batches are compared with. */
export interface UnitSession {
  src: RawConnection;
  tgt: RawConnection;
  srcCaps: ServerCaps;
  tgtCaps: ServerCaps;
  srcDb: number;
  tgtDb: number;
  /** Whether probes read expiries (key-probe.ts), shared by the unit's batches on this pair of nodes. */
  expiry: ExpiryReads;
  /** One EXISTS may name many keys: the source is not a cluster, whose batches span many slots. */
  multiKeyExists: boolean;
  mode: 'full' | 'length' | 'exists';
  ttlToleranceMs: number;
  /** Compare DUMP payloads before reading values as data (both servers write the same format). */
  dumpPayloads: boolean;
  /** MEMORY USAGE above which a key is compared in pages instead of read whole. */
  bigKeyBytes: number;
  /** Upper bound on the estimated bytes of one pipelined DUMP or whole-value read. */
  maxBatchBytes: number;
  paged: PagedPool;
  onBytes: (n: number) => void;
}

/**
 * What a key absent from the source means: in round 1's source pass it vanished since SCAN (the
 * destination pass judges it); when a known difference is re-checked it is an extra destination key.
 */
export type SourceAbsent = 'skip' | 'extra';

/** Per key: its differences, or undefined when it is equal (or gone from both sides). */
export type KeyResult = Finding[] | undefined;

export function compareKeys(
  s: UnitSession,
  keys: readonly Buffer[],
  absent: SourceAbsent,
): Promise<KeyResult[]> {
  if (keys.length === 0) return Promise.resolve([]);
  switch (s.mode) {
    case 'exists':
      return compareExistence(s, keys, absent);
    case 'length':
      return compareLengths(s, keys, absent);
    default:
      return compareFull(s, keys, absent);
  }
}

/**
 * Keys of a destination scan that the source does not hold. Only the source is asked for every key;
 * the few it lacks are checked again on the destination, since they may have expired since SCAN.
 * Where it can, the source is first asked once for the whole batch (EXISTS k1 … kn counts the keys
 * that exist): when it holds every one, that single command is the answer, instead of one per key.
 */
export async function findExtras(s: UnitSession, keys: readonly Buffer[]): Promise<boolean[]> {
  if (s.multiKeyExists) {
    const [n] = await send(s.src, encodeCommand(['EXISTS', ...keys]), 1);
    checkAll(s.src, [n!], ['EXISTS']);
    if (n === keys.length) return keys.map(() => false);
  }
  const a = await send(s.src, encodeKeyCommands([HEAD.EXISTS], keys), keys.length);
  checkAll(s.src, a, ['EXISTS']);
  const absent = keys.filter((_, i) => a[i] === 0);
  const extra = keys.map(() => false);
  if (absent.length === 0) return extra;
  const b = await send(s.tgt, encodeKeyCommands([HEAD.EXISTS], absent), absent.length);
  checkAll(s.tgt, b, ['EXISTS']);
  let j = 0;
  for (let i = 0; i < keys.length; i++) if (a[i] === 0) extra[i] = b[j++] === 1;
  return extra;
}

function checkAll(conn: RawConnection, replies: RespValue[], names: readonly string[]): void {
  for (let i = 0; i < replies.length; i++) {
    const v = replies[i];
    if (v instanceof RespError) throw readFailed(conn, v, names[i % names.length]!);
  }
}

/** 'both' when both sides hold the key with one type; otherwise the result for the key. */
function presence(sType: string, tType: string, absent: SourceAbsent): KeyResult | 'both' {
  const sNone = sType === 'none';
  const tNone = tType === 'none';
  if (sNone && tNone) return undefined;
  if (sNone) {
    return absent === 'extra'
      ? [{ category: 'extra', detail: `${article(tType)} on the target only` }]
      : undefined;
  }
  if (tNone) return [{ category: 'missing', detail: `${article(sType)} on the source only` }];
  if (sType !== tType) {
    return [{ category: 'type', detail: `${article(sType)} on the source, ${article(tType)} on the target` }];
  }
  return 'both';
}

function article(type: string): string {
  return type === 'key' ? 'the key' : `a ${type}`;
}

async function compareExistence(
  s: UnitSession,
  keys: readonly Buffer[],
  absent: SourceAbsent,
): Promise<KeyResult[]> {
  const buf = encodeKeyCommands([HEAD.EXISTS], keys);
  const [a, b] = await Promise.all([send(s.src, buf, keys.length), send(s.tgt, buf, keys.length)]);
  checkAll(s.src, a, ['EXISTS']);
  checkAll(s.tgt, b, ['EXISTS']);
  return keys.map((_, i) => {
    const r = presence(a[i] === 1 ? 'key' : 'none', b[i] === 1 ? 'key' : 'none', absent);
    return r === 'both' ? undefined : r;
  });
}

const LENGTH_HEADS: Record<string, Buffer> = {
  string: HEAD.STRLEN,
  list: HEAD.LLEN,
  set: HEAD.SCARD,
  zset: HEAD.ZCARD,
  hash: HEAD.HLEN,
  stream: HEAD.XLEN,
};

async function compareLengths(
  s: UnitSession,
  keys: readonly Buffer[],
  absent: SourceAbsent,
): Promise<KeyResult[]> {
  const buf = encodeKeyCommands([HEAD.TYPE], keys);
  const [a, b] = await Promise.all([send(s.src, buf, keys.length), send(s.tgt, buf, keys.length)]);
  checkAll(s.src, a, ['TYPE']);
  checkAll(s.tgt, b, ['TYPE']);
  const results: KeyResult[] = new Array(keys.length);
  const items: { i: number; head: Buffer; key: Buffer; type: string }[] = [];
  for (let i = 0; i < keys.length; i++) {
    const type = String(a[i]);
    const r = presence(type, String(b[i]), absent);
    if (r !== 'both') {
      results[i] = r;
      continue;
    }
    // Module types have no length command: equal types is all this mode can say.
    const head = LENGTH_HEADS[type];
    if (head) items.push({ i, head, key: keys[i]!, type });
  }
  if (items.length === 0) return results;
  const lens = encodeMixedKeyCommands(items);
  const [la, lb] = await Promise.all([send(s.src, lens, items.length), send(s.tgt, lens, items.length)]);
  items.forEach((item, j) => {
    const x = la[j]!;
    const y = lb[j]!;
    if (x instanceof RespError || y instanceof RespError) {
      const err = x instanceof RespError ? x : (y as RespError);
      if (err.prefix !== 'WRONGTYPE')
        throw readFailed(x instanceof RespError ? s.src : s.tgt, err, 'a length command');
      results[item.i] = [{ category: 'type', detail: 'the key changed type while it was compared' }];
    } else if (x !== y) {
      results[item.i] = [
        { category: 'value', detail: `${item.type} lengths differ: ${sides(String(x), String(y))}` },
      ];
    }
  });
  return results;
}

/** A key present on both sides, on its way through the value comparison. */
interface Candidate {
  i: number;
  key: Buffer;
  /** undefined until TYPE was read (the fast path reads it only for keys whose payloads differ). */
  type?: string;
  /** Larger MEMORY USAGE of the two sides; infinite when unknown. */
  size: number;
  /** Its DUMP payloads were compared and differ. */
  dumped?: boolean;
}

/**
 * The expiry and MEMORY USAGE of every key on both sides in one pipeline each; then the values: DUMP
 * payloads when both servers write the same format (equal bytes are equal values), the whole value as
 * data when they do not or when the payloads differ, and big keys and streams in pages.
 *
 * When both servers write the same format, TYPE is read only for keys whose payloads differ, are big, or
 * are on one side only: equal payloads imply equal types, and most keys are equal.
 */
async function compareFull(
  s: UnitSession,
  keys: readonly Buffer[],
  absent: SourceAbsent,
): Promise<KeyResult[]> {
  const sameFormat = s.dumpPayloads;
  const withType = !(sameFormat && s.srcCaps.memoryUsage && s.tgtCaps.memoryUsage);
  const [a, b] = await probeBoth(s, keys, withType);
  const results: KeyResult[] = new Array(keys.length);
  const dumps: Candidate[] = [];
  const untyped: Candidate[] = [];
  const typed: Candidate[] = [];
  for (let i = 0; i < keys.length; i++) {
    const ma = a.memory[i];
    const mb = b.memory[i];
    const size = ma === undefined || mb === undefined ? Number.POSITIVE_INFINITY : Math.max(ma, mb);
    const c: Candidate = { i, key: keys[i]!, size };
    if (!a.present[i] || !b.present[i]) {
      if (withType) {
        const r = presence(a.present[i] ? a.types[i]! : 'none', b.present[i] ? b.types[i]! : 'none', absent);
        if (r !== 'both') results[i] = r;
        continue;
      }
      if (!a.present[i] && (!b.present[i] || absent === 'skip')) continue;
      // On one side only: TYPE is read below, for the detail.
      results[i] = [];
      untyped.push(c);
      continue;
    }
    if (withType) {
      const r = presence(a.types[i]!, b.types[i]!, absent);
      if (r !== 'both') {
        results[i] = r;
        continue;
      }
      c.type = a.types[i]!;
    }
    const findings: Finding[] = [];
    const ttl = ttlFinding(a.expireAt[i]!, b.expireAt[i]!, s.ttlToleranceMs);
    if (ttl) findings.push(ttl);
    results[i] = findings;
    if (size <= s.bigKeyBytes && sameFormat) dumps.push(c);
    else if (c.type === undefined) untyped.push(c);
    else typed.push(c);
  }
  for (const c of await compareDumps(s, dumps, results, absent))
    (c.type === undefined ? untyped : typed).push(c);
  typed.push(...(await readTypes(s, untyped, results, absent)));
  const wholes: Candidate[] = [];
  const paged: Candidate[] = [];
  for (const c of typed) {
    const type = c.type!;
    if (c.size <= s.bigKeyBytes && readWhole(s, type)) wholes.push(c);
    else if (!c.dumped || WHOLE_TYPES.has(type) || type === 'stream') paged.push(c);
    else {
      results[c.i]!.push({
        category: 'value',
        detail: `${type} values differ byte for byte in their DUMP payloads (the only way to compare this type)`,
      });
    }
  }
  await Promise.all([compareWholes(s, wholes, results), comparePagedAll(s, paged, results)]);
  return results.map((r) => (r && r.length > 0 ? r : undefined));
}

/**
 * TYPE on both sides for candidates read without it. Keys with one type on both sides are returned
 * for the value comparison; the others get their result (missing, extra, type) here.
 */
async function readTypes(
  s: UnitSession,
  items: Candidate[],
  results: KeyResult[],
  absent: SourceAbsent,
): Promise<Candidate[]> {
  if (items.length === 0) return [];
  const buf = encodeKeyCommands(
    [HEAD.TYPE],
    items.map((c) => c.key),
  );
  const [a, b] = await Promise.all([send(s.src, buf, items.length), send(s.tgt, buf, items.length)]);
  checkAll(s.src, a, ['TYPE']);
  checkAll(s.tgt, b, ['TYPE']);
  const both: Candidate[] = [];
  items.forEach((c, j) => {
    const r = presence(String(a[j]), String(b[j]), absent);
    if (r === 'both') {
      c.type = String(a[j]);
      both.push(c);
    } else {
      results[c.i] = r;
    }
  });
  return both;
}

/** Hashes with field expiries need HPEXPIRETIME per field, which the paged comparison does. */
function readWhole(s: UnitSession, type: string): boolean {
  if (type === 'hash') return !s.srcCaps.fieldTtl && !s.tgtCaps.fieldTtl;
  return WHOLE_TYPES.has(type);
}

/** Consecutive groups whose estimated size stays under maxBytes (a group has at least one item). */
function* bySize(items: readonly Candidate[], maxBytes: number): Generator<Candidate[]> {
  let group: Candidate[] = [];
  let bytes = 0;
  for (const c of items) {
    if (group.length > 0 && bytes + c.size > maxBytes) {
      yield group;
      group = [];
      bytes = 0;
    }
    group.push(c);
    bytes += c.size;
  }
  if (group.length > 0) yield group;
}

/**
 * RDB object types (the first byte of a DUMP payload) of the core types. Numbers are never reused
 * across versions, since every server must load older RDB files.
 */
const RDB_TYPES: Record<number, string> = {
  0: 'string',
  1: 'list',
  2: 'set',
  3: 'zset',
  4: 'hash',
  5: 'zset',
  9: 'hash',
  10: 'list',
  11: 'set',
  12: 'zset',
  13: 'hash',
  14: 'list',
  15: 'stream',
  16: 'hash',
  17: 'zset',
  18: 'list',
  19: 'stream',
  20: 'set',
  21: 'stream',
};

/** Returns the candidates whose payloads differ, marked `dumped` (typed when the payloads tell). */
async function compareDumps(
  s: UnitSession,
  items: Candidate[],
  results: KeyResult[],
  absent: SourceAbsent,
): Promise<Candidate[]> {
  const mismatched: Candidate[] = [];
  for (const group of bySize(items, s.maxBatchBytes)) {
    const buf = encodeKeyCommands(
      [HEAD.DUMP],
      group.map((c) => c.key),
    );
    const [a, b] = await Promise.all([send(s.src, buf, group.length), send(s.tgt, buf, group.length)]);
    checkAll(s.src, a, ['DUMP']);
    checkAll(s.tgt, b, ['DUMP']);
    group.forEach((c, j) => {
      const x = a[j] as Buffer | null;
      const y = b[j] as Buffer | null;
      if (x === null || y === null) {
        // Gone since the probe on one side: judged like any absent key.
        if (x === null && (y === null || absent === 'skip')) results[c.i] = undefined;
        else {
          results[c.i] = [];
          mismatched.push(c);
        }
        return;
      }
      s.onBytes(x.length + y.length);
      if (x.equals(y) || sameElements(x, y)) return;
      c.dumped = true;
      // The payloads' first byte names the type (when both agree), which saves a TYPE per key.
      const type = RDB_TYPES[x[0]!];
      if (type !== undefined && type === RDB_TYPES[y[0]!]) c.type = type;
      mismatched.push(c);
    });
  }
  return mismatched;
}

async function compareWholes(s: UnitSession, items: Candidate[], results: KeyResult[]): Promise<void> {
  for (const group of bySize(items, s.maxBatchBytes)) {
    const buf = encodeAll(group.map((c) => wholeValueCommand(c.type!, c.key)));
    const [a, b] = await Promise.all([send(s.src, buf, group.length), send(s.tgt, buf, group.length)]);
    group.forEach((c, j) => {
      const x = a[j]!;
      const y = b[j]!;
      for (const [conn, v] of [
        [s.src, x],
        [s.tgt, y],
      ] as const) {
        if (v instanceof RespError && v.prefix !== 'WRONGTYPE')
          throw readFailed(conn, v, String(wholeValueCommand(c.type!, c.key)[0]));
      }
      s.onBytes(replyBytes(x) + replyBytes(y));
      const detail = compareWholeValues(c.type!, x, y);
      if (detail) results[c.i]!.push({ category: 'value', detail });
    });
  }
}

async function comparePagedAll(s: UnitSession, items: Candidate[], results: KeyResult[]): Promise<void> {
  await Promise.all(
    items.map((c) =>
      s.paged.run(async (ctx) => {
        const found =
          c.type === 'stream' ? await compareStream(ctx, c.key) : await comparePaged(ctx, c.key, c.type!);
        results[c.i]!.push(...found);
      }),
    ),
  );
}

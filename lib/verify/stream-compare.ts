import { RespError, type RespValue } from '../redis/resp.ts';
import { shown, sides } from './describe.ts';
import type { PagedContext } from './paged-compare.ts';
import { ask } from './read-error.ts';
import type { Finding } from './verify-types.ts';

/** PEL entries and stream entries per XINFO STREAM FULL / XPENDING / XRANGE page. */
const INFO_COUNT = 100;
const PAGE = 500;

/**
 * Set by the server when a consumer reads, not by the data: a copy cannot carry them (and a replica
 * sets its own). The radix tree sizes depend on how the entries were inserted, not on what they are.
 */
const VOLATILE = new Set(['seen-time', 'active-time', 'radix-tree-keys', 'radix-tree-nodes']);

const CHANGED = 'the key changed type while it was compared';

/**
 * A stream is its entries plus metadata DUMP also carries: last-generated-id, entries-added,
 * max-deleted-entry-id, and each consumer group's last-delivered-id, entries-read, consumers and pending
 * entries (PEL). Entries are compared in XRANGE pages; metadata from XINFO STREAM FULL (bounded by
 * COUNT), and PELs longer than that through XPENDING pages. Fields only one server version reports
 * (entries-added before Redis 7) are skipped; delivery times are compared within the TTL tolerance.
 */
export async function compareStream(c: PagedContext, key: Buffer): Promise<Finding[]> {
  const detail = (await compareMetadata(c, key)) ?? (await compareEntries(c, key));
  return detail ? [{ category: 'value', detail }] : [];
}

type Fields = Map<string, RespValue>;

function fields(v: RespValue): Fields {
  const m: Fields = new Map();
  if (!Array.isArray(v)) return m;
  for (let i = 0; i + 1 < v.length; i += 2) m.set(String(v[i]), v[i + 1] ?? null);
  return m;
}

function text(v: RespValue | undefined): string {
  if (v === undefined || v === null) return 'nil';
  if (Buffer.isBuffer(v)) return v.toString('latin1');
  if (Array.isArray(v)) return `[${v.map(text).join(', ')}]`;
  if (v instanceof RespError) return `error ${v.message}`;
  return String(v);
}

/** The first field, present on both sides and not skipped, whose values differ. */
function firstFieldDifference(
  a: Fields,
  b: Fields,
  skip: ReadonlySet<string>,
  where: string,
): string | undefined {
  for (const [name, value] of a) {
    if (skip.has(name) || VOLATILE.has(name) || !b.has(name)) continue;
    if (text(value) !== text(b.get(name))) return `${where}${name} ${sides(text(value), text(b.get(name)))}`;
  }
  return undefined;
}

async function compareMetadata(c: PagedContext, key: Buffer): Promise<string | undefined> {
  const command = ['XINFO', 'STREAM', key, 'FULL', 'COUNT', INFO_COUNT];
  const [s, t] = await Promise.all([ask(c.src, command), ask(c.tgt, command)]);
  if (s instanceof RespError || t instanceof RespError) return CHANGED;
  if (s === null || t === null) return s === t ? undefined : 'the key vanished while it was compared';
  const a = fields(s);
  const b = fields(t);
  const top = firstFieldDifference(a, b, new Set(['entries', 'groups']), 'stream ');
  if (top) return top;
  const ga = ((a.get('groups') as RespValue[] | null) ?? []).map(fields);
  const gb = ((b.get('groups') as RespValue[] | null) ?? []).map(fields);
  const onlyOn = oneSided(ga, gb, 'consumer group');
  if (onlyOn) return onlyOn;
  for (let i = 0; i < ga.length; i++) {
    const d = await compareGroup(c, key, ga[i]!, gb[i]!);
    if (d) return d;
  }
  return undefined;
}

/** A group (or consumer) present on one side only, by name; both lists are in name order. */
function oneSided(a: Fields[], b: Fields[], what: string): string | undefined {
  const names = (l: Fields[]) => l.map((f) => text(f.get('name')));
  const na = names(a);
  const nb = names(b);
  const sb = new Set(nb);
  const sa = new Set(na);
  const onlySource = na.find((n) => !sb.has(n));
  if (onlySource !== undefined) return `${what} ${shown(onlySource)} is on the source only`;
  const onlyTarget = nb.find((n) => !sa.has(n));
  if (onlyTarget !== undefined) return `${what} ${shown(onlyTarget)} is on the target only`;
  if (na.join('\0') !== nb.join('\0')) return `${what}s are listed in a different order`;
  return undefined;
}

async function compareGroup(c: PagedContext, key: Buffer, a: Fields, b: Fields): Promise<string | undefined> {
  const name = text(a.get('name'));
  const where = `consumer group ${shown(name)}: `;
  const d = firstFieldDifference(a, b, new Set(['pending', 'consumers']), where);
  if (d) return d;
  const pa = (a.get('pending') as RespValue[][] | null) ?? [];
  const pb = (b.get('pending') as RespValue[][] | null) ?? [];
  // [id, consumer, delivery-time, delivery-count]
  const pd = comparePending(pa, pb, where, (e) => Number(e[2]), 1, 3, c.ttlToleranceMs);
  if (pd) return pd;
  const ca = ((a.get('consumers') as RespValue[] | null) ?? []).map(fields);
  const cb = ((b.get('consumers') as RespValue[] | null) ?? []).map(fields);
  const oc = oneSided(ca, cb, `${where}consumer`);
  if (oc) return oc;
  for (let i = 0; i < ca.length; i++) {
    const cd = firstFieldDifference(
      ca[i]!,
      cb[i]!,
      new Set(['pending']),
      `${where}consumer ${shown(text(ca[i]!.get('name')))}: `,
    );
    if (cd) return cd;
  }
  const pelCount = Number(a.get('pel-count') ?? 0);
  if (pelCount > pa.length && pa.length > 0) {
    return comparePendingPages(c, key, name, text(pa[pa.length - 1]![0]), where);
  }
  return undefined;
}

/** Delivery times are compared within the tolerance, like expiries; ids, consumers and counts exactly. */
function comparePending(
  a: RespValue[][],
  b: RespValue[][],
  where: string,
  time: (e: RespValue[]) => number,
  consumerAt: number,
  countAt: number,
  tolerance: number,
): string | undefined {
  if (a.length !== b.length) return `${where}pending entries differ: ${sides(a.length, b.length)}`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    const id = text(x[0]);
    if (id !== text(y[0])) return `${where}pending entry ${i} is ${sides(id, text(y[0]))}`;
    if (text(x[consumerAt]) !== text(y[consumerAt])) {
      return `${where}pending entry ${id} belongs to ${sides(shown(text(x[consumerAt])), shown(text(y[consumerAt])))}`;
    }
    if (text(x[countAt]) !== text(y[countAt])) {
      return `${where}pending entry ${id} was delivered ${sides(text(x[countAt]), text(y[countAt]))} times`;
    }
    if (Math.abs(time(x) - time(y)) > tolerance) {
      return `${where}pending entry ${id} delivery time differs by ${Math.abs(time(x) - time(y))} ms`;
    }
  }
  return undefined;
}

/** The rest of a long PEL: XPENDING's idle time (ms since delivery) stands in for the delivery time. */
async function comparePendingPages(
  c: PagedContext,
  key: Buffer,
  group: string,
  lastSeen: string,
  where: string,
): Promise<string | undefined> {
  let after = lastSeen;
  for (;;) {
    const start = successor(after);
    if (!start) return undefined;
    const command = ['XPENDING', key, Buffer.from(group, 'latin1'), start, '+', PAGE];
    const [s, t] = await Promise.all([ask(c.src, command), ask(c.tgt, command)]);
    if (s instanceof RespError || t instanceof RespError) return CHANGED;
    const a = (s as RespValue[][]) ?? [];
    const b = (t as RespValue[][]) ?? [];
    // [id, consumer, idle, delivery-count]
    const d = comparePending(a, b, where, (e) => -Number(e[2]), 1, 3, c.ttlToleranceMs);
    if (d) return d;
    if (a.length < PAGE) return undefined;
    after = text(a[a.length - 1]![0]);
  }
}

async function compareEntries(c: PagedContext, key: Buffer): Promise<string | undefined> {
  let start = '-';
  for (;;) {
    const command = ['XRANGE', key, start, '+', 'COUNT', PAGE];
    const [s, t] = await Promise.all([ask(c.src, command), ask(c.tgt, command)]);
    if (s instanceof RespError || t instanceof RespError) return CHANGED;
    const a = s as [Buffer, Buffer[]][];
    const b = t as [Buffer, Buffer[]][];
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const [ida, fa] = a[i]!;
      const [idb, fb] = b[i]!;
      if (!ida.equals(idb)) return `stream entry ids differ: ${sides(text(ida), text(idb))}`;
      if (fa.length !== fb.length || fa.some((f, j) => !f.equals(fb[j]!))) {
        return `stream entry ${text(ida)} differs`;
      }
      let bytes = 0;
      for (const f of fa) bytes += 2 * f.length;
      c.onBytes?.(bytes);
    }
    if (a.length !== b.length) {
      const extra = a.length > b.length ? a[n]! : b[n]!;
      return `stream entry ${text(extra[0])} is on the ${a.length > b.length ? 'source' : 'target'} only`;
    }
    if (a.length < PAGE) return undefined;
    const next = successor(text(a[a.length - 1]![0]));
    if (!next) return undefined;
    start = next;
  }
}

const MAX_SEQ = (1n << 64n) - 1n;

/** The smallest id after `id` (an explicit id rather than `(id`, which servers before 6.2 reject). */
function successor(id: string): string | undefined {
  const [ms, seq] = id.split('-');
  const m = BigInt(ms ?? '0');
  const s = BigInt(seq ?? '0');
  if (s < MAX_SEQ) return `${m}-${s + 1n}`;
  if (m < MAX_SEQ) return `${m + 1n}-0`;
  return undefined;
}

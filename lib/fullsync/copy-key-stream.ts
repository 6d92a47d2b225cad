import type { Redis } from 'ioredis';
import { hasCreateConsumer, hasStreamCounters } from '../redis/server-versions.ts';
import {
  type PartCopyContext,
  type PartCopyResult,
  pageCount,
  payloadBytes,
} from './copy-key-collections.ts';
import type { Arg } from './copy-key-writer.ts';

/** A stream entry ID as [ms, seq]. */
type StreamId = readonly [bigint, bigint];

interface PendingEntry {
  id: StreamId;
  consumer: Buffer;
  /** Unix ms of the last delivery, as the source reports it (or estimates it, see readMorePending). */
  deliveryTime: string;
  deliveryCount: string;
}

interface GroupMeta {
  name: Buffer;
  lastDeliveredId: string;
  /** undefined: the source predates the field (Redis < 7); null: the source does not know it. */
  entriesRead: string | null | undefined;
  consumers: Buffer[];
  pending: PendingEntry[];
}

interface StreamMeta {
  lastId: StreamId;
  /** undefined when the source predates these fields (Redis < 7). */
  entriesAdded: string | undefined;
  maxDeletedId: string | undefined;
  groups: GroupMeta[];
}

/**
 * Copies a stream: entries, then what DUMP would also carry: last-generated-id, entries-added,
 * max-deleted-entry-id, and each consumer group with its last-delivered-id, entries-read, consumers and
 * pending entries (PEL).
 *
 * The metadata is read first and the entries only up to its last-generated-id, so entries added during the
 * copy stay out consistently (the incremental sync brings them). A pending entry can outlive its message
 * (XDEL, XTRIM), but XCLAIM only creates pending entries for messages that exist: such IDs get a placeholder
 * entry, inserted in ID order among the real ones, claimed, then removed (XTRIM for those before the first
 * real entry, which leaves max-deleted-entry-id alone, XDEL for the rest), and XSETID restores the counters.
 *
 * Not reproducible: consumers' seen-time (and active-time on 7.2+) become the copy's time, since no command
 * sets them; the destination clamps a delivery time that is in its future (clock skew) to its now.
 * When the source's max-deleted-entry-id is 0-0 yet a pending message was deleted from the middle (possible
 * for a stream loaded from a pre-7 RDB), the placeholder's XDEL leaves a non-zero value that XSETID
 * cannot reset (it ignores MAXDELETEDID 0-0).
 */
export async function copyStream(c: PartCopyContext): Promise<PartCopyResult> {
  // XINFO STREAM FULL returns as many entries as PEL entries per group: size that page by a sample entry.
  const sample = await c.source.xrangeBuffer(c.key, '-', '+', 'COUNT', 1);
  const infoCount = sample[0] ? pageCount(c.pageSize, 1, payloadBytes([sample[0][1]])) : c.pageSize;
  const read = await readStreamMeta(c.source, c.key, infoCount, c.pageSize);
  if (!read) return 'vanished';
  return writeStream(c, forTarget(read, c.targetVersion), xrangePages(c, read.lastId));
}

/** The entries up to lastId in XRANGE pages sized by pageCount. */
async function* xrangePages(c: PartCopyContext, lastId: StreamId): AsyncGenerator<[Buffer, Buffer[]][]> {
  let start = '-';
  let elements = 0;
  let bytes = 0;
  const end = formatId(lastId);
  for (;;) {
    const count = pageCount(c.pageSize, elements, bytes);
    const page = (await c.source.xrangeBuffer(c.key, start, end, 'COUNT', count)) as [Buffer, Buffer[]][];
    yield page;
    const last = page.at(-1);
    if (page.length < count || !last) break;
    elements += page.length;
    for (const [, fields] of page) for (const f of fields) bytes += f.length;
    // An explicit successor rather than `(id`, which servers before 6.2 do not understand.
    const after = successor(parseId(last[0]));
    if (!after) break;
    start = formatId(after);
  }
}

/**
 * The commands that rebuild a stream read whole in one `XINFO STREAM key FULL COUNT 0` (every entry,
 * every pending entry), as a logical chunk reads it inside its transaction: the same commands as the
 * copy in parts, written to `key` itself (the chunk's MULTI makes them atomic). Undefined for a reply
 * that is no stream's.
 */
export async function streamCommandsFromInfo(
  key: Buffer,
  reply: unknown,
  targetVersion: number | undefined,
): Promise<Buffer[][] | undefined> {
  if (!Array.isArray(reply) && !(reply instanceof Map)) return undefined;
  const f = fieldsOf(reply);
  if (!f.has('last-generated-id')) return undefined;
  const meta = forTarget(metaFromInfo(f), targetVersion);
  const entries = listOf(f.get('entries')).map((e) => {
    const [id, fields] = listOf(e);
    return [asBuffer(id), listOf(fields).map(asBuffer)] as [Buffer, Buffer[]];
  });
  const out: Buffer[][] = [];
  const collect = async (command: string, args: Arg[]) => {
    out.push([Buffer.from(command), ...args.map((a) => (Buffer.isBuffer(a) ? a : Buffer.from(a)))]);
  };
  const sink = {
    send: collect,
    sendVariadic: (command: string, head: Arg[], items: Arg[][]) =>
      collect(command, [...head, ...items.flat()]),
  };
  async function* once() {
    yield entries;
  }
  // The source and page size are not used: entries come from the reply, and runs are not split.
  const c = {
    key,
    tmp: key,
    writer: sink,
    pageSize: Number.MAX_SAFE_INTEGER,
    // What createGroup writes for consumers depends on it (no CREATECONSUMER before 6.2).
    ...(targetVersion !== undefined ? { targetVersion } : {}),
  } as unknown as PartCopyContext;
  await writeStream(c, meta, once());
  return out;
}

/** Entries (with placeholders for pending entries whose message is gone), counters, groups. */
async function writeStream(
  c: PartCopyContext,
  meta: StreamMeta,
  pages: AsyncIterable<[Buffer, Buffer[]][]>,
): Promise<PartCopyResult> {
  const orphans = uniqueSortedIds(meta.groups.flatMap((g) => g.pending.map((p) => p.id)));
  const placeholders: StreamId[] = [];
  let next = 0;
  const addPlaceholdersBelow = async (limit: StreamId, inclusive: boolean) => {
    for (; next < orphans.length; next++) {
      const cmp = compareIds(orphans[next]!, limit);
      if (cmp > 0 || (cmp === 0 && !inclusive)) break;
      placeholders.push(orphans[next]!);
      await c.writer.send('XADD', [c.tmp, formatId(orphans[next]!), '', '']);
    }
  };

  let elements = 0;
  let bytes = 0;
  let firstReal: StreamId | undefined;
  for await (const page of pages) {
    for (const [rawId, fields] of page) {
      const id = parseId(rawId);
      await addPlaceholdersBelow(id, false);
      if (next < orphans.length && compareIds(orphans[next]!, id) === 0) next++;
      firstReal ??= id;
      await c.writer.send('XADD', [c.tmp, rawId, ...fields]);
      elements++;
      for (const f of fields) bytes += f.length;
    }
  }
  await addPlaceholdersBelow(meta.lastId, true);

  if (elements === 0 && placeholders.length === 0) {
    // An empty stream (all entries deleted, or only groups) still exists: create it without adding an entry.
    await c.writer.send('XGROUP', ['CREATE', c.tmp, 'redis-dts-tmp', '0', 'MKSTREAM']);
    await c.writer.send('XGROUP', ['DESTROY', c.tmp, 'redis-dts-tmp']);
  }
  // Set the counters before the groups too, so that each group's entries-read and last-delivered-id are
  // within the stream's, as they are on the source (the placeholders count as added entries meanwhile).
  const withPlaceholders = BigInt(elements + placeholders.length);
  const added = meta.entriesAdded === undefined ? undefined : BigInt(meta.entriesAdded);
  await c.writer.send(
    'XSETID',
    xsetidArgs(c.tmp, meta, added === undefined || added >= withPlaceholders ? added : withPlaceholders),
  );

  const firstPlaceholder = placeholders[0];
  const firstId =
    firstPlaceholder && (!firstReal || compareIds(firstPlaceholder, firstReal) < 0)
      ? firstPlaceholder
      : firstReal;
  for (const g of meta.groups) await createGroup(c, g, firstId);

  const head = firstReal ? placeholders.filter((id) => compareIds(id, firstReal) < 0) : placeholders;
  if (head.length > 0) {
    const keep = elements + placeholders.length - head.length;
    await c.writer.send('XTRIM', [c.tmp, 'MAXLEN', String(keep)]);
  }
  const middle = placeholders.slice(head.length);
  if (middle.length > 0) {
    await c.writer.sendVariadic(
      'XDEL',
      [c.tmp],
      middle.map((id) => [formatId(id)]),
    );
  }
  // XDEL moved max-deleted-entry-id, and entries-added may have been raised for the placeholders.
  if (placeholders.length > 0) await c.writer.send('XSETID', xsetidArgs(c.tmp, meta, added));
  return { elements, bytes };
}

/**
 * What an older destination can hold of the metadata: before 7.0 a stream has no entries-added or
 * max-deleted-entry-id and a group no entries-read (the destination would refuse the arguments).
 */
function forTarget(meta: StreamMeta, targetVersion: number | undefined): StreamMeta {
  if (targetVersion === undefined || hasStreamCounters(targetVersion)) return meta;
  return {
    lastId: meta.lastId,
    entriesAdded: undefined,
    maxDeletedId: undefined,
    groups: meta.groups.map((g) => ({ ...g, entriesRead: undefined })),
  };
}

function xsetidArgs(tmp: Buffer, meta: StreamMeta, entriesAdded: bigint | undefined): Arg[] {
  const args: Arg[] = [tmp, formatId(meta.lastId)];
  if (entriesAdded !== undefined) args.push('ENTRIESADDED', entriesAdded.toString());
  if (meta.maxDeletedId !== undefined) args.push('MAXDELETEDID', meta.maxDeletedId);
  return args;
}

/** `firstId`: the stream's first entry while groups are created (placeholders included), if any. */
async function createGroup(c: PartCopyContext, g: GroupMeta, firstId: StreamId | undefined): Promise<void> {
  const create: Arg[] = ['CREATE', c.tmp, g.name, g.lastDeliveredId];
  // -1 is how the server itself records an unknown entries-read.
  if (g.entriesRead !== undefined) create.push('ENTRIESREAD', g.entriesRead ?? '-1');
  await c.writer.send('XGROUP', create);
  if (c.targetVersion === undefined || hasCreateConsumer(c.targetVersion)) {
    for (const consumer of g.consumers)
      await c.writer.send('XGROUP', ['CREATECONSUMER', c.tmp, g.name, consumer]);
  } else if (g.consumers.length > 0 && firstId !== undefined) {
    // Before 6.2 there is no CREATECONSUMER, and XREADGROUP creates its consumer only when it delivers
    // an entry: each consumer is handed the stream's first entry from position 0, which is then acked
    // (the XCLAIMs below write the real pending entries), and the group goes back to its own position.
    for (const consumer of g.consumers) {
      await c.writer.send('XGROUP', ['SETID', c.tmp, g.name, '0']);
      await c.writer.send('XREADGROUP', ['GROUP', g.name, consumer, 'COUNT', '1', 'STREAMS', c.tmp, '>']);
    }
    await c.writer.send('XACK', [c.tmp, g.name, formatId(firstId)]);
    await c.writer.send('XGROUP', ['SETID', c.tmp, g.name, g.lastDeliveredId]);
  }
  // One XCLAIM per run of entries sharing consumer, delivery time and count (TIME/RETRYCOUNT apply to all
  // IDs of a command). FORCE creates the pending entry; JUSTID keeps the reply small; min-idle 0 always passes.
  let run: PendingEntry[] = [];
  const claim = async () => {
    if (run.length === 0) return;
    const p = run[0]!;
    await c.writer.send('XCLAIM', [
      c.tmp,
      g.name,
      p.consumer,
      '0',
      ...run.map((e) => formatId(e.id)),
      'TIME',
      p.deliveryTime,
      'RETRYCOUNT',
      p.deliveryCount,
      'FORCE',
      'JUSTID',
    ]);
    run = [];
  };
  for (const p of g.pending) {
    const head = run[0];
    if (
      head &&
      (!head.consumer.equals(p.consumer) ||
        head.deliveryTime !== p.deliveryTime ||
        head.deliveryCount !== p.deliveryCount ||
        run.length >= c.pageSize)
    ) {
      await claim();
    }
    run.push(p);
  }
  await claim();
}

/**
 * XINFO STREAM FULL, with COUNT bounding the entries (unused here) and each group's PEL it returns; a PEL
 * longer than that is read on with XPENDING. Undefined when the key is gone.
 */
async function readStreamMeta(
  source: Redis,
  key: Buffer,
  infoCount: number,
  pageSize: number,
): Promise<StreamMeta | undefined> {
  let reply: unknown;
  try {
    reply = await source.callBuffer('XINFO', ['STREAM', key, 'FULL', 'COUNT', String(infoCount)]);
  } catch (e) {
    if ((await source.exists(key)) === 0) return undefined;
    throw e;
  }
  const f = fieldsOf(reply);
  const meta = metaFromInfo(f);
  for (const [i, raw] of listOf(f.get('groups')).entries()) {
    const g = meta.groups[i]!;
    const pelCount = Number(text(fieldsOf(raw).get('pel-count')));
    if (g.pending.length < pelCount) {
      g.pending.push(...(await readMorePending(source, key, g.name, g.pending.at(-1)?.id, pageSize)));
    }
  }
  return meta;
}

/** The metadata in an XINFO STREAM FULL reply (each group's PEL as far as its COUNT reached). */
function metaFromInfo(f: Map<string, unknown>): StreamMeta {
  const groups: GroupMeta[] = [];
  for (const raw of listOf(f.get('groups'))) {
    const gf = fieldsOf(raw);
    const pending: PendingEntry[] = listOf(gf.get('pending')).map((p) => {
      const [id, consumer, time, count] = listOf(p);
      return {
        id: parseId(id),
        consumer: asBuffer(consumer),
        deliveryTime: text(time),
        deliveryCount: text(count),
      };
    });
    groups.push({
      name: asBuffer(gf.get('name')),
      lastDeliveredId: text(gf.get('last-delivered-id')),
      entriesRead: gf.has('entries-read') ? nullableText(gf.get('entries-read')) : undefined,
      consumers: listOf(gf.get('consumers')).map((cr) => asBuffer(fieldsOf(cr).get('name'))),
      pending,
    });
  }
  return {
    lastId: parseId(f.get('last-generated-id')),
    entriesAdded: f.has('entries-added') ? text(f.get('entries-added')) : undefined,
    maxDeletedId: f.has('max-deleted-entry-id') ? text(f.get('max-deleted-entry-id')) : undefined,
    groups,
  };
}

/**
 * Pages a group's PEL with XPENDING after `after`. XPENDING reports idle time, not delivery time, so the
 * delivery time is estimated as the server's TIME (read in the same transaction) minus idle: it can be off
 * by a millisecond, unlike the exact times XINFO gives for the first page.
 */
async function readMorePending(
  source: Redis,
  key: Buffer,
  group: Buffer,
  after: StreamId | undefined,
  pageSize: number,
): Promise<PendingEntry[]> {
  const out: PendingEntry[] = [];
  let start = after ? successor(after) : ([0n, 0n] as const);
  while (start) {
    const replies = await source
      .multi()
      .call('TIME')
      .callBuffer('XPENDING', [key, group, formatId(start), '+', String(pageSize)])
      .exec();
    if (!replies) throw new Error('XPENDING transaction was aborted');
    for (const [err] of replies) if (err) throw err;
    const [sec, usec] = listOf(replies[0]![1]).map((v) => BigInt(text(v)));
    const nowMs = sec! * 1000n + usec! / 1000n;
    const page = listOf(replies[1]![1]);
    let last: StreamId | undefined;
    for (const row of page) {
      const [id, consumer, idle, count] = listOf(row);
      last = parseId(id);
      out.push({
        id: last,
        consumer: asBuffer(consumer),
        deliveryTime: (nowMs - BigInt(text(idle))).toString(),
        deliveryCount: text(count),
      });
    }
    if (page.length < pageSize || !last) break;
    start = successor(last);
  }
  return out;
}

// --- reply shapes: RESP2 and RESP3 "legacy" give flat [name, value, …] arrays, RESP3 "resp3" plain objects.

function fieldsOf(reply: unknown): Map<string, unknown> {
  const m = new Map<string, unknown>();
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) m.set(String(reply[i]), reply[i + 1]);
  } else if (reply instanceof Map) {
    for (const [k, v] of reply) m.set(String(k), v);
  } else if (reply && typeof reply === 'object' && !Buffer.isBuffer(reply)) {
    for (const [k, v] of Object.entries(reply)) m.set(k, v);
  }
  return m;
}

function listOf(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function asBuffer(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'string') return Buffer.from(v);
  throw new Error(`unexpected stream metadata value: ${String(v)}`);
}

function text(v: unknown): string {
  if (Buffer.isBuffer(v)) return v.toString('latin1');
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint') return String(v);
  throw new Error(`unexpected stream metadata value: ${String(v)}`);
}

function nullableText(v: unknown): string | null {
  return v === null || v === undefined ? null : text(v);
}

// --- stream IDs

function parseId(v: unknown): StreamId {
  const s = text(v);
  const dash = s.indexOf('-');
  if (dash < 0) return [BigInt(s), 0n];
  return [BigInt(s.slice(0, dash)), BigInt(s.slice(dash + 1))];
}

function formatId(id: StreamId): string {
  return `${id[0]}-${id[1]}`;
}

function compareIds(a: StreamId, b: StreamId): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1;
  return 0;
}

const MAX_PART = (1n << 64n) - 1n;

/** The smallest ID after `id`, or undefined after the largest possible ID. */
function successor(id: StreamId): StreamId | undefined {
  if (id[1] < MAX_PART) return [id[0], id[1] + 1n];
  if (id[0] < MAX_PART) return [id[0] + 1n, 0n];
  return undefined;
}

function uniqueSortedIds(ids: StreamId[]): StreamId[] {
  const sorted = [...ids].sort(compareIds);
  return sorted.filter((id, i) => i === 0 || compareIds(sorted[i - 1]!, id) !== 0);
}

import type { Redis } from 'ioredis';
import { type Arg, argBytes, type CommandSink } from './copy-key-writer.ts';

/** What one type's copier needs: `tmp` is the destination key being built. */
export interface PartCopyContext {
  source: Redis;
  key: Buffer;
  tmp: Buffer;
  writer: CommandSink;
  pageSize: number;
  maxCommandBytes: number;
  /** The destination's redis_version number; absent: it knows every argument the source does. */
  targetVersion?: number;
}

/** Elements and payload bytes written, or 'vanished' when the source key was gone before anything was read. */
export type PartCopyResult = { elements: number; bytes: number } | 'vanished';

/** A read page aims at this many bytes: pageSize elements, fewer when they are large. */
const READ_PAGE_BYTES = 8 * 1024 * 1024;
/** Elements in the first page, while their size is unknown. */
const FIRST_PAGE = 16;

/** Elements to ask for in the next page, from the average element size seen so far. */
export function pageCount(pageSize: number, elementsSoFar: number, bytesSoFar: number): number {
  if (elementsSoFar === 0) return Math.min(pageSize, FIRST_PAGE);
  const average = Math.max(1, bytesSoFar / elementsSoFar);
  return Math.max(1, Math.min(pageSize, Math.floor(READ_PAGE_BYTES / average)));
}

export function payloadBytes(items: Arg[][]): number {
  let n = 0;
  for (const item of items)
    for (const a of item) n += typeof a === 'string' ? Buffer.byteLength(a) : a.length;
  return n;
}

/** SET the first chunk (so an empty string is copied too), APPEND the rest. */
export async function copyString(c: PartCopyContext): Promise<PartCopyResult> {
  const chunkSize = Math.max(1, c.maxCommandBytes - argBytes(c.tmp) - 64);
  let offset = 0;
  for (;;) {
    const chunk = await c.source.getrangeBuffer(c.key, offset, offset + chunkSize - 1);
    // GETRANGE answers '' for a missing key as for an empty string.
    if (offset === 0 && chunk.length === 0 && (await c.source.exists(c.key)) === 0) return 'vanished';
    await c.writer.send(offset === 0 ? 'SET' : 'APPEND', [c.tmp, chunk]);
    offset += chunk.length;
    if (chunk.length < chunkSize) break;
  }
  return { elements: 1, bytes: offset };
}

export async function copyList(c: PartCopyContext): Promise<PartCopyResult> {
  let elements = 0;
  let bytes = 0;
  for (;;) {
    const count = pageCount(c.pageSize, elements, bytes);
    const page = await c.source.lrangeBuffer(c.key, elements, elements + count - 1);
    const items = page.map((e) => [e]);
    await c.writer.sendVariadic('RPUSH', [c.tmp], items);
    elements += page.length;
    bytes += payloadBytes(items);
    if (page.length < count) break;
  }
  return elements === 0 ? 'vanished' : { elements, bytes };
}

type ScanCommand = 'sscanBuffer' | 'hscanBuffer' | 'zscanBuffer';

/**
 * Walks SSCAN/HSCAN/ZSCAN to the end. SCAN may return an element twice; re-adding it is harmless for all
 * three types (SADD/HSET/ZADD overwrite), though it is counted twice in `elements`.
 */
async function copyScanned(
  c: PartCopyContext,
  scan: ScanCommand,
  itemWidth: 1 | 2,
  write: (items: Buffer[][]) => Promise<void>,
): Promise<PartCopyResult> {
  let cursor = '0';
  let elements = 0;
  let bytes = 0;
  do {
    const [next, flat] = await c.source[scan](c.key, cursor, 'COUNT', pageCount(c.pageSize, elements, bytes));
    cursor = next.toString();
    const items: Buffer[][] = [];
    for (let i = 0; i + itemWidth <= flat.length; i += itemWidth) items.push(flat.slice(i, i + itemWidth));
    if (items.length > 0) await write(items);
    elements += items.length;
    bytes += payloadBytes(items);
  } while (cursor !== '0');
  return elements === 0 ? 'vanished' : { elements, bytes };
}

export function copySet(c: PartCopyContext): Promise<PartCopyResult> {
  return copyScanned(c, 'sscanBuffer', 1, (items) => c.writer.sendVariadic('SADD', [c.tmp], items));
}

/**
 * ZSCAN gives each score as the server formats it (`inf`, `-inf`, or enough digits to round-trip the
 * double), and ZADD parses that text back to the same double, so scores pass through untouched.
 */
export function copyZset(c: PartCopyContext): Promise<PartCopyResult> {
  return copyScanned(c, 'zscanBuffer', 2, (items) =>
    c.writer.sendVariadic(
      'ZADD',
      [c.tmp],
      items.map(([member, score]) => [score!, member!]),
    ),
  );
}

export function copyHash(c: PartCopyContext): Promise<PartCopyResult> {
  const fieldTtl = new FieldTtlCopier(c);
  return copyScanned(c, 'hscanBuffer', 2, async (items) => {
    await c.writer.sendVariadic('HSET', [c.tmp], items);
    await fieldTtl.copy(items.map(([field]) => field!));
  });
}

/**
 * Hash fields can carry their own expiry (Redis 7.4+, Valkey 9+), which DUMP keeps and HSCAN does not show.
 * Each page's field expiries are read with HPEXPIRETIME and set again with HPEXPIREAT after the HSET; a source
 * without the command (older servers) has no field expiries, so the first "unknown command" turns this off.
 */
class FieldTtlCopier {
  readonly #c: PartCopyContext;
  #supported = true;

  constructor(c: PartCopyContext) {
    this.#c = c;
  }

  async copy(fields: Buffer[]): Promise<void> {
    if (!this.#supported || fields.length === 0) return;
    let times: unknown;
    try {
      times = await this.#c.source.callBuffer('HPEXPIRETIME', [
        this.#c.key,
        'FIELDS',
        fields.length,
        ...fields,
      ]);
    } catch (e) {
      if (/unknown command/i.test((e as Error).message)) {
        this.#supported = false;
        return;
      }
      throw e;
    }
    if (!Array.isArray(times)) return;
    const byTime = new Map<string, Buffer[]>();
    times.forEach((t, i) => {
      const at = String(t);
      // -1: no expiry; -2: the field is gone meanwhile (a concurrent change, like any other during the copy).
      if (at.startsWith('-')) return;
      const list = byTime.get(at) ?? [];
      list.push(fields[i]!);
      byTime.set(at, list);
    });
    for (const [at, list] of byTime) {
      // FIELDS carries its own count, so the split into commands under maxCommandBytes is done here.
      let part: Buffer[] = [];
      let bytes = 0;
      for (const field of list) {
        if (part.length > 0 && bytes + argBytes(field) > this.#c.maxCommandBytes) {
          await this.#expireAt(at, part);
          part = [];
          bytes = 0;
        }
        part.push(field);
        bytes += argBytes(field);
      }
      await this.#expireAt(at, part);
    }
  }

  #expireAt(at: string, fields: Buffer[]): Promise<void> {
    return this.#c.writer.send('HPEXPIREAT', [this.#c.tmp, at, 'FIELDS', String(fields.length), ...fields]);
  }
}

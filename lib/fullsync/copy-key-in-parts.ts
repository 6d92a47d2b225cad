import type { Redis } from 'ioredis';
import { DtsError } from '../errors.ts';
import {
  copyHash,
  copyList,
  copySet,
  copyString,
  copyZset,
  type PartCopyContext,
  type PartCopyResult,
} from './copy-key-collections.ts';
import { copyStream } from './copy-key-stream.ts';
import { tempKeyFor } from './copy-key-temp-name.ts';
import { PartWriter } from './copy-key-writer.ts';

export interface CopyInPartsOptions {
  source: Redis;
  target: Redis;
  key: Buffer;
  /**
   * Absolute expiry in ms from PEXPIRETIME on the source, -1 = no expiry; or a function that reads it
   * once every part is written, just before the RENAME (copy-key-at-stamp.ts reads it at its stamp).
   * When the function throws, nothing is renamed and the temporary key is removed.
   */
  pexpireAt: number | (() => Promise<number>);
  /** prefix for the temporary key, e.g. 'redis-dts:tmp:<taskId>:' */
  tempPrefix: string;
  /** elements per page read/written (default 1000) */
  pageSize?: number;
  /** max bytes of one write command (default 8 MiB; must stay below the target's proto-max-bulk-len) */
  maxCommandBytes?: number;
  /**
   * Leave the temporary key built and return it in `pending` instead of renaming it: the caller puts the
   * RENAME in its own transaction, after the commands already queued for the key (a re-copy during
   * incremental sync, whose batch may still hold earlier commands on it).
   */
  deferRename?: boolean;
  /**
   * The destination's redis_version as a number (server-versions.ts); absent: not older than the source.
   * An older one gets only the stream arguments it knows (no ENTRIESADDED, ENTRIESREAD before 7.0).
   */
  targetVersion?: number;
}

export interface CopyInPartsResult {
  /** The source's TYPE; 'none' when the key no longer exists there (the caller deletes it on the target). */
  type: string;
  elements: number;
  /** Payload bytes written (values, members, fields), without protocol overhead. */
  bytes: number;
  /** With deferRename: the built temporary key, to RENAME over the key, and the expiry to set then. */
  pending?: { tmp: Buffer; pexpireAt: number };
}

const COPIERS: Record<string, (c: PartCopyContext) => Promise<PartCopyResult>> = {
  string: copyString,
  list: copyList,
  set: copySet,
  zset: copyZset,
  hash: copyHash,
  stream: copyStream,
};

/**
 * Copies one key whose DUMP payload is too large for the destination's proto-max-bulk-len (so RESTORE would
 * be refused) by reading it in pages and writing it with ordinary commands into a temporary key that is
 * then renamed over the key, so the destination never shows a half-copied value.
 *
 * The source key may be written to during the copy; the result is then some mix of its states (a list
 * paged by index can even repeat or skip elements after an LPUSH or LPOP). That is accepted here: the key is
 * dirty for the incremental sync, which copies it again. A key deleted and recreated with another type
 * meanwhile fails the copy with WRONGTYPE (nothing is renamed), like any other error.
 */
export async function copyKeyInParts(o: CopyInPartsOptions): Promise<CopyInPartsResult> {
  const type = await o.source.type(o.key);
  if (type === 'none') return { type, elements: 0, bytes: 0 };
  const copier = COPIERS[type];
  if (!copier) throw unsupportedBigKey(o.key, type);

  const maxCommandBytes = o.maxCommandBytes ?? 8 * 1024 * 1024;
  const pageSize = o.pageSize ?? 1000;
  const tmp = tempKeyFor(o.key, o.tempPrefix);
  const writer = new PartWriter(o.target, maxCommandBytes, pageSize);
  try {
    const copied = await copier({
      source: o.source,
      key: o.key,
      tmp,
      writer,
      pageSize,
      maxCommandBytes,
      ...(o.targetVersion !== undefined ? { targetVersion: o.targetVersion } : {}),
    });
    await writer.drain();
    if (copied === 'vanished') {
      await o.target.del(tmp);
      return { type: 'none', elements: 0, bytes: 0 };
    }
    const pexpireAt = typeof o.pexpireAt === 'function' ? await o.pexpireAt() : o.pexpireAt;
    if (o.deferRename) return { type, ...copied, pending: { tmp, pexpireAt } };
    // One transaction, so the key never shows the new value without its expiry.
    const tx = o.target.multi().rename(tmp, o.key);
    if (pexpireAt >= 0) tx.pexpireat(o.key, pexpireAt);
    const replies = await tx.exec();
    if (!replies) throw new Error('RENAME transaction was aborted');
    for (const [err] of replies) if (err) throw err;
    return { type, ...copied };
  } catch (e) {
    await writer.abandon();
    await o.target.del(tmp).catch(() => undefined);
    // Redis caps APPEND/SETRANGE results at proto-max-bulk-len too, so a string longer than that cannot be
    // built on the destination by any client command: only strings within the few bytes by which DUMP
    // exceeds the string fit through this path.
    if (type === 'string' && /maximum allowed size/i.test((e as Error).message)) {
      const length = await o.source.strlen(o.key).catch(() => undefined);
      throw stringTooLong(o.key, length, e);
    }
    throw e;
  }
}

function stringTooLong(key: Buffer, length: number | undefined, cause: unknown): DtsError {
  return new DtsError(
    'BIG_KEY_UNSUPPORTED',
    `key ${printableKey(key)} is a string${length === undefined ? '' : ` of ${length} bytes`}, longer than ` +
      `the destination's proto-max-bulk-len, which also caps the size of a string value`,
    "raise proto-max-bulk-len on the destination above the string's length, or leave the key out of the task",
    { cause },
  );
}

export function unsupportedBigKey(key: Buffer, type: string): DtsError {
  return new DtsError(
    'BIG_KEY_UNSUPPORTED',
    `key ${printableKey(key)} of type ${type} is larger than the destination's proto-max-bulk-len ` +
      `and this type cannot be copied in parts`,
    "raise proto-max-bulk-len on the destination above the key's DUMP size, or leave the key out of the task",
  );
}

const MAX_PRINTED_BYTES = 200;

/** The key in double quotes, bytes outside printable ASCII as \xNN (like redis-cli), cut after 200 bytes. */
export function printableKey(key: Buffer): string {
  let s = '"';
  for (const b of key.subarray(0, MAX_PRINTED_BYTES)) {
    if (b === 0x22 || b === 0x5c) s += `\\${String.fromCharCode(b)}`;
    else if (b >= 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  s += '"';
  return key.length > MAX_PRINTED_BYTES ? `${s}… (${key.length} bytes)` : s;
}

import type { Redis } from 'ioredis';
import { DtsError } from '../errors.ts';
import { type CopyInPartsResult, copyKeyInParts, printableKey } from './copy-key-in-parts.ts';
import { parseStamp, type Stamp } from './stamped-chunk-reader.ts';

/**
 * How a copy in parts is stamped (ARCHITECTURE.md, "Exactness"):
 * - `after`: the stamp is read after the last part. No read happened after it, which is all a full-sync
 *   chunk needs: the key's writes during the copy are at or before the stamp, so at or before the
 *   catch-up bound F, so the key is in the dirty set and copied again at an exact stamp.
 * - `exact`: the key is WATCHed before its first read and the stamp is read in a transaction after its
 *   last: EXEC runs only when nothing touched the key in between (a write, an expiry, a FLUSHDB), so
 *   every part shows the key's state at the stamp, as one DUMP in a transaction would. Otherwise the
 *   copy is dropped before its RENAME and made again. A re-copy needs this: the stream is skipped on
 *   the key up to its stamp.
 */
export type PartStampMode = 'after' | 'exact';

export interface CopyAtStampOptions {
  source: Redis;
  target: Redis;
  key: Buffer;
  tempPrefix: string;
  maxCommandBytes: number;
  /** PEXPIRETIME needs 7.0; below it PTTL and TIME in the same transaction. */
  sourceVersion: number;
  mode: PartStampMode;
  /** Copies made before `exact` gives up on a key that is written all the time (default 5). */
  attempts?: number;
  /** See CopyInPartsOptions.deferRename. */
  deferRename?: boolean;
  /** See CopyInPartsOptions.targetVersion. */
  targetVersion?: number;
}

export interface CopyAtStampResult extends CopyInPartsResult {
  stamp: Stamp;
}

const ABORTED = Symbol('key changed during its copy');

/** Copies one key in parts and says at which source position its value holds. */
export async function copyKeyAtStamp(o: CopyAtStampOptions): Promise<CopyAtStampResult> {
  const attempts = o.mode === 'exact' ? (o.attempts ?? 5) : 1;
  for (let attempt = 1; ; attempt++) {
    let stamp: Stamp | undefined;
    const readStamp = async (): Promise<number> => {
      const read = await stampTransaction(o.source, o.key, o.sourceVersion);
      if (read === null) throw ABORTED;
      stamp = read.stamp;
      return read.pexpireAt;
    };
    if (o.mode === 'exact') await o.source.watch(o.key);
    try {
      const result = await copyKeyInParts({ ...o, pexpireAt: readStamp });
      // Gone before (or while) it was read: nothing was renamed, the destination deletes it at the stamp.
      if (!stamp) await readStamp();
      return { ...result, stamp: stamp! };
    } catch (e) {
      if (e !== ABORTED) {
        await o.source.unwatch().catch(() => undefined);
        throw e;
      }
      if (attempt >= attempts) throw keyBusy(o.key, attempts);
    }
  }
}

/**
 * `MULTI; PEXPIRETIME k (PTTL k; TIME); INFO replication; EXEC`: the key's expiry and the source
 * position in one atomic read; null when a WATCH aborted it.
 */
async function stampTransaction(
  source: Redis,
  key: Buffer,
  sourceVersion: number,
): Promise<{ stamp: Stamp; pexpireAt: number } | null> {
  const legacy = sourceVersion < 70000;
  const tx = source.multi();
  if (legacy) tx.pttl(key).time();
  else tx.call('PEXPIRETIME', key);
  tx.info('replication');
  const replies = await tx.exec();
  if (!replies) return null;
  for (const [err] of replies) if (err) throw err;
  const values = replies.map(([, v]) => v);
  const stamp = parseStamp(String(values[values.length - 1]));
  const ttl = Number(values[0]);
  if (ttl < 0) return { stamp, pexpireAt: -1 };
  if (!legacy) return { stamp, pexpireAt: ttl };
  const [sec, usec] = (values[1] as string[]).map(Number);
  return { stamp, pexpireAt: sec! * 1000 + Math.floor(usec! / 1000) + ttl };
}

function keyBusy(key: Buffer, attempts: number): DtsError {
  return new DtsError(
    'BIG_KEY_BUSY',
    `key ${printableKey(key)} was written during each of ${attempts} copies in parts, so no copy holds ` +
      'its value at one position of the source',
    'raise --memory-budget (limits.memoryBudget) above its size so it is read whole, or pause the writes to it',
  );
}

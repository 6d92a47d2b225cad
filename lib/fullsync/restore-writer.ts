import { DtsError } from '../errors.ts';
import { describeEndpoint } from '../redis/endpoint.ts';
import type { RawConnection } from '../redis/raw-connection.ts';
import { bulkSize, copyBytes, decimalLength, RespError, writeBulk, writeDecimal } from '../redis/resp.ts';
import type { EncodedRestores } from './restore-encoder.ts';
import type { Chunk } from './stamped-chunk-reader.ts';

/** What a RESTORE batch needs of a chunk (the RDB full sync builds them without a SCAN). */
export type RestoreBatch = Pick<Chunk, 'keys' | 'payloads' | 'expireAt' | 'bytes'>;

/** A key the destination refused, kept for the report. */
export interface KeyError {
  key: Buffer;
  error: string;
}

export interface WriteResult {
  written: number;
  /** Keys that vanished between SCAN and DUMP (nothing to write). */
  vanished: number;
  /** Keys too large for one RESTORE, left to the caller to copy in parts. */
  oversized: number[];
  errors: KeyError[];
}

const RESTORE_HEAD = Buffer.from('*6\r\n$7\r\nRESTORE\r\n');
const REPLACE_ABSTTL = Buffer.from('$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n');

/** Destination errors after which writing more keys cannot succeed: stop the task at once. */
export const FATAL_PREFIXES = new Set([
  'OOM',
  'NOPERM',
  'READONLY',
  'MISCONF',
  'NOAUTH',
  'WRONGPASS',
  'MASTERDOWN',
  'MOVED',
  'ASK',
  'CLUSTERDOWN',
]);

/**
 * Pipelined `RESTORE key ttl payload REPLACE ABSTTL` with a bound on bytes written but not yet
 * acknowledged: the destination's pace throttles the whole pipeline instead of our memory growing.
 */
export class RestoreWriter {
  private readonly conn: RawConnection;
  private readonly maxInFlightBytes: number;
  /** Largest payload the destination accepts in one RESTORE (its proto-max-bulk-len). */
  private readonly maxPayloadBytes: number;
  private inFlightBytes = 0;
  private waiters: (() => void)[] = [];

  constructor(conn: RawConnection, options: { maxInFlightBytes: number; maxPayloadBytes: number }) {
    this.conn = conn;
    this.maxInFlightBytes = options.maxInFlightBytes;
    this.maxPayloadBytes = options.maxPayloadBytes;
  }

  /** Resolves once every RESTORE of the chunk is acknowledged. Rejects with a DtsError on a fatal reply. */
  async write<B extends RestoreBatch>(chunk: B): Promise<WriteResult> {
    const { keys, payloads, expireAt } = chunk;
    const result: WriteResult = { written: 0, vanished: 0, oversized: [], errors: [] };
    const sent: number[] = [];
    let size = 0;
    for (let i = 0; i < keys.length; i++) {
      const p = payloads[i];
      if (!p) {
        result.vanished++;
        continue;
      }
      if (p.length > this.maxPayloadBytes) {
        result.oversized.push(i);
        continue;
      }
      sent.push(i);
      size +=
        RESTORE_HEAD.length +
        bulkSize(keys[i]!.length) +
        bulkSize(decimalLength(expireAt[i]!)) +
        bulkSize(p.length) +
        REPLACE_ABSTTL.length;
    }
    if (sent.length === 0) return result;

    await this.reserve(size);
    const out = Buffer.allocUnsafe(size);
    let pos = 0;
    for (const i of sent) {
      pos = copyBytes(RESTORE_HEAD, 0, RESTORE_HEAD.length, out, pos);
      pos = writeBulk(out, pos, keys[i]!);
      out[pos++] = 0x24;
      pos = writeDecimal(out, pos, decimalLength(expireAt[i]!));
      out[pos++] = 13;
      out[pos++] = 10;
      pos = writeDecimal(out, pos, expireAt[i]!);
      out[pos++] = 13;
      out[pos++] = 10;
      pos = writeBulk(out, pos, payloads[i]!);
      pos = copyBytes(REPLACE_ABSTTL, 0, REPLACE_ABSTTL.length, out, pos);
    }

    return this.send(out, sent.length, size, (n) => keys[sent[n]!]!, result);
  }

  /** RESTOREs encoded by the caller (RestoreEncoder): sent as they are, under the same bound. */
  async writeEncoded(batch: EncodedRestores): Promise<WriteResult> {
    const result: WriteResult = { written: 0, vanished: 0, oversized: [], errors: [] };
    if (batch.count === 0) return result;
    await this.reserve(batch.buf.length);
    return this.send(batch.buf, batch.count, batch.buf.length, batch.keyAt, result);
  }

  private send(
    out: Buffer,
    count: number,
    size: number,
    keyAt: (n: number) => Buffer,
    result: WriteResult,
  ): Promise<WriteResult> {
    const who = describeEndpoint(this.conn.endpoint);
    return new Promise((resolve, reject) => {
      let fatal: RespError | undefined;
      // A full socket buffer needs no wait here: reserve() already bounds the bytes in flight.
      this.conn.write(out, count, {
        onReply: (v, n) => {
          if (!(v instanceof RespError)) return;
          if (FATAL_PREFIXES.has(v.prefix)) fatal ??= v;
          else result.errors.push({ key: keyAt(n), error: v.message });
        },
        onDone: () => {
          this.release(size);
          result.written = count - result.errors.length - (fatal ? 1 : 0);
          if (fatal) reject(fatalWriteError(who, fatal));
          else resolve(result);
        },
        onFail: (e) => {
          this.release(size);
          reject(e);
        },
      });
    });
  }

  private async reserve(bytes: number): Promise<void> {
    // A single chunk larger than the bound is let through alone rather than deadlocking.
    while (this.inFlightBytes > 0 && this.inFlightBytes + bytes > this.maxInFlightBytes) {
      await new Promise<void>((r) => this.waiters.push(r));
    }
    this.inFlightBytes += bytes;
  }

  private release(bytes: number): void {
    this.inFlightBytes -= bytes;
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}

/** What a run again does after a scan copy stopped; an RDB load (rdb-shard-load.ts) replaces it with its own. */
export const RESUMES_FROM_CHECKPOINT = 'it resumes from its checkpoint';

export function fatalWriteError(who: string, err: RespError): DtsError {
  switch (err.prefix) {
    case 'OOM':
      return new DtsError(
        'TARGET_OOM',
        `${who} is out of memory (maxmemory reached): the full sync stopped and the destination is partially written`,
        `raise maxmemory on the destination (or free memory), then run the same task again: ${RESUMES_FROM_CHECKPOINT}`,
      );
    case 'NOPERM':
      return new DtsError(
        'NO_PERMISSION',
        `${who}: the user may not RESTORE (${err.message}); the destination may be partially written`,
        'grant the destination user +restore +select +ping (e.g. ACL SETUSER <user> +@write +restore)',
      );
    case 'READONLY':
      return new DtsError(
        'TARGET_READONLY',
        `${who} is a read-only replica: nothing more can be written`,
        'point --target at the primary of the destination',
      );
    case 'MOVED':
    case 'ASK':
      return new DtsError(
        'TARGET_SLOTS_MOVED',
        `${who} no longer serves a key's slot (${err.message}): the destination cluster was resharded or ` +
          'failed over during the copy',
        `run the same task again: it reads the new slot map and ${RESUMES_FROM_CHECKPOINT}`,
      );
    default:
      return new DtsError(
        'TARGET_WRITE_FAILED',
        `${who} refused writes (${err.message}); the destination may be partially written`,
        'fix the destination as the message says, then run the same task again to resume',
      );
  }
}

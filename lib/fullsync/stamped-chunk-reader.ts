import { DtsError } from '../errors.ts';
import { describeEndpoint } from '../redis/endpoint.ts';
import type { RawConnection } from '../redis/raw-connection.ts';
import { bulkSize, copyBytes, RespError, type RespValue, writeBulk } from '../redis/resp.ts';
import { hasMultiSectionInfo, hasPexpiretime } from '../redis/server-versions.ts';

/** The source replication position at which a chunk was read (ARCHITECTURE.md, "Chunks are stamped"). */
export interface Stamp {
  replid: string;
  offset: number;
}

/** One SCAN chunk of one db, read in a single MULTI/EXEC so every value carries the same stamp. */
export interface Chunk {
  /** SCAN cursor to resume from once this chunk is applied ('0' = the db is done). */
  cursorAfter: string;
  keys: Buffer[];
  /** DUMP payload per key; null when the key vanished between SCAN and DUMP. */
  payloads: (Buffer | null)[];
  /** Absolute expiry in ms per key; 0 = no expiry. */
  expireAt: number[];
  stamp: Stamp;
  /** Payload bytes in the chunk. */
  bytes: number;
}

export interface KeyBatch {
  cursorAfter: string;
  keys: Buffer[];
}

const MULTI = Buffer.from('*1\r\n$5\r\nMULTI\r\n');
const DUMP_HEAD = Buffer.from('*2\r\n$4\r\nDUMP\r\n');
const PEXPIRETIME_HEAD = Buffer.from('*2\r\n$11\r\nPEXPIRETIME\r\n');
const PTTL_HEAD = Buffer.from('*2\r\n$4\r\nPTTL\r\n');
const TIME = Buffer.from('*1\r\n$4\r\nTIME\r\n');
const INFO_REPLICATION = Buffer.from('*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n');
const INFO_REPLICATION_KEYSPACE = Buffer.from('*3\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n$8\r\nkeyspace\r\n');
const EXEC = Buffer.from('*1\r\n$4\r\nEXEC\r\n');

/**
 * Reads key batches as stamped chunks:
 * `MULTI; DUMP k…; PEXPIRETIME k… (PTTL k and TIME after each below Redis 7); INFO replication; EXEC`.
 * Many reads may be in flight on the one connection; they complete in order.
 *
 * While the db holds no key with an expiry, a chunk is read without the per-key TTL lookups (a tenth of
 * the source's CPU per key) and `INFO keyspace` inside the same transaction proves, atomically, that
 * every TTL of the chunk is indeed none. The first chunk that finds expiring keys in its db is read
 * again with TTLs, and so is every later chunk of this reader.
 */
export class StampedChunkReader {
  private readonly conn: RawConnection;
  private readonly hasPexpiretime: boolean;
  private readonly db: number;
  private readonly transaction: boolean;
  private withTtl: boolean;

  /**
   * `boundedStamp`: read without MULTI, the INFO after the reads. A cluster node refuses a transaction
   * over keys of several slots, and a full-sync chunk does not need the exact position: only that no read
   * happened after its stamp (the catch-up re-copies every key written up to the largest stamp, so a key
   * that changed between its read and the stamp is copied again). A re-copy needs the exact stamp.
   */
  constructor(
    conn: RawConnection,
    options: { sourceVersion: number; db: number; dbHasExpiringKeys: boolean; boundedStamp?: boolean },
  ) {
    this.conn = conn;
    this.transaction = options.boundedStamp !== true;
    this.hasPexpiretime = hasPexpiretime(options.sourceVersion);
    this.db = options.db;
    // Multi-section INFO needs Redis 7; older sources always read TTLs.
    this.withTtl = options.dbHasExpiringKeys || !hasMultiSectionInfo(options.sourceVersion);
  }

  async read(batch: KeyBatch): Promise<Chunk> {
    if (this.withTtl) return this.send(batch, true);
    const chunk = await this.send(batch, false);
    if (!chunk.expiringInDb) return chunk;
    this.withTtl = true;
    return this.send(batch, true);
  }

  private send(batch: KeyBatch, withTtl: boolean): Promise<Chunk & { expiringInDb?: boolean }> {
    const { keys } = batch;
    const n = keys.length;
    const info = withTtl ? INFO_REPLICATION : INFO_REPLICATION_KEYSPACE;
    const legacy = withTtl && !this.hasPexpiretime;
    const ttlHead = this.hasPexpiretime ? PEXPIRETIME_HEAD : PTTL_HEAD;
    const tx = this.transaction;
    let size = (tx ? MULTI.length + EXEC.length : 0) + info.length;
    for (const k of keys) {
      size += DUMP_HEAD.length + bulkSize(k.length) + (withTtl ? ttlHead.length + bulkSize(k.length) : 0);
      if (legacy) size += TIME.length;
    }
    const out = Buffer.allocUnsafe(size);
    let pos = tx ? MULTI.copy(out, 0) : 0;
    // DUMP and its TTL read side by side: the second lookup of a key finds it in the CPU cache.
    for (const k of keys) {
      pos = writeKeyCommand(out, pos, DUMP_HEAD, k);
      if (withTtl) pos = writeKeyCommand(out, pos, ttlHead, k);
      // TIME right after each PTTL: one TIME for the chunk was late by however long the transaction's
      // later DUMPs took (41 ms measured on a loaded machine); this way the expiry is late by < 1 ms.
      if (legacy) pos += TIME.copy(out, pos);
    }
    pos += info.copy(out, pos);
    if (tx) pos += EXEC.copy(out, pos);

    const perKey = legacy ? 3 : withTtl ? 2 : 1;
    const commands = perKey * n + 1 + (tx ? 2 : 0);
    return new Promise((resolve, reject) => {
      let queueError: RespError | undefined;
      let exec: RespValue = null;
      // Without a transaction the replies themselves are what EXEC would have returned.
      const replies: RespValue[] = [];
      if (!tx) exec = replies;
      this.conn.write(out.subarray(0, pos), commands, {
        onReply: (v, i) => {
          if (!tx) replies.push(v);
          else if (i === commands - 1) exec = v;
          else if (v instanceof RespError && !queueError) queueError = v;
        },
        onDone: () => {
          try {
            resolve(this.toChunk(batch, exec, queueError, withTtl, legacy));
          } catch (e) {
            reject(e);
          }
        },
        onFail: reject,
      });
    });
  }

  private toChunk(
    batch: KeyBatch,
    exec: RespValue,
    queueError: RespError | undefined,
    withTtl: boolean,
    legacy: boolean,
  ): Chunk & { expiringInDb?: boolean } {
    if (queueError || exec instanceof RespError || !Array.isArray(exec)) {
      const err =
        queueError ?? (exec instanceof RespError ? exec : new RespError('ERR transaction discarded'));
      throw chunkReadError(this.conn, err);
    }
    const n = batch.keys.length;
    const perKey = legacy ? 3 : withTtl ? 2 : 1;
    const payloads: (Buffer | null)[] = new Array(n);
    const expireAt: number[] = new Array(n);
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const p = exec[perKey * i];
      if (p instanceof RespError) throw chunkReadError(this.conn, p);
      payloads[i] = p as Buffer | null;
      if (p) bytes += (p as Buffer).length;
      if (!withTtl) {
        expireAt[i] = 0;
        continue;
      }
      const t = exec[perKey * i + 1] as number;
      // -1: no expiry, -2: vanished (its payload is null too).
      expireAt[i] = t < 0 ? 0 : legacy ? timeMs(exec[perKey * i + 2] ?? null) + t : t;
    }
    const info = exec[exec.length - 1] ?? null;
    const chunk = {
      cursorAfter: batch.cursorAfter,
      keys: batch.keys,
      payloads,
      expireAt,
      stamp: parseStamp(info),
      bytes,
    };
    return withTtl ? chunk : { ...chunk, expiringInDb: dbHasExpiringKeys(info, this.db) };
  }
}

/** TIME's [seconds, microseconds] as whole ms (truncated, as the server's own clock for PTTL). */
export function timeMs(reply: RespValue): number {
  const t = reply as Buffer[];
  return Number(t[0]) * 1000 + Math.floor(Number(t[1]) / 1000);
}

/** From INFO keyspace: `db3:keys=10,expires=2,avg_ttl=…`. */
function dbHasExpiringKeys(info: RespValue, db: number): boolean {
  const text = Buffer.isBuffer(info) ? info.toString('latin1') : String(info);
  const m = new RegExp(`^db${db}:keys=\\d+,expires=(\\d+)`, 'm').exec(text);
  return m !== null && Number(m[1]) > 0;
}

function writeKeyCommand(out: Buffer, pos: number, head: Buffer, key: Buffer): number {
  pos = copyBytes(head, 0, head.length, out, pos);
  return writeBulk(out, pos, key);
}

/** master_replid and master_repl_offset from an INFO replication reply. */
export function parseStamp(info: RespValue): Stamp {
  const text = Buffer.isBuffer(info) ? info.toString('latin1') : String(info);
  const replid = /^master_replid:([0-9a-f]+)/m.exec(text)?.[1];
  const offset = /^master_repl_offset:(\d+)/m.exec(text)?.[1];
  if (!replid || offset === undefined) {
    throw new DtsError(
      'NO_REPLICATION_INFO',
      'the source did not report master_replid/master_repl_offset in INFO replication',
      'use a Redis-compatible source that implements INFO replication (Redis >= 4)',
    );
  }
  return { replid, offset: Number(offset) };
}

export function chunkReadError(conn: RawConnection, err: RespError): DtsError {
  const who = describeEndpoint(conn.endpoint);
  if (err.prefix === 'NOPERM' || /NOPERM/.test(err.message)) {
    return new DtsError(
      'NO_PERMISSION',
      `${who}: the user may not run a command the full sync needs (${err.message})`,
      'grant the user +scan +dump +pexpiretime +info +multi +exec (e.g. ACL SETUSER <user> +@read +dump +info +multi +exec)',
    );
  }
  if (err.prefix === 'MOVED' || err.prefix === 'ASK') {
    // A cluster master that answers MOVED no longer serves these slots: it failed over or was resharded.
    return new DtsError(
      'SOURCE_SLOTS_MOVED',
      `${who}: the source no longer serves these keys' slots (${err.message}): it failed over or was resharded`,
      'run the task again: a failover is followed (it resumes from its checkpoints); resharding the source during a task is not',
    );
  }
  return new DtsError(
    'SOURCE_READ_FAILED',
    `${who}: reading a chunk failed: ${err.message}`,
    'check that the source allows MULTI/EXEC, DUMP, PEXPIRETIME and INFO (they may be renamed or disabled)',
  );
}

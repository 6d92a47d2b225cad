import { targetDbFor } from '../commands/key-filter.ts';
import { DtsError, isDtsError } from '../errors.ts';
import { printableKey } from '../fullsync/copy-key-in-parts.ts';
import { type LogicalChunk, LogicalChunkReader } from '../fullsync/logical-chunk-reader.ts';
import { replaceCommands } from '../fullsync/logical-writer.ts';
import { SizeProbe } from '../fullsync/size-probe.ts';
import { type Chunk, type Stamp, StampedChunkReader } from '../fullsync/stamped-chunk-reader.ts';
import { groupBySlot } from '../redis/cluster-slot.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import type { MemoryBudget } from '../util/memory-budget.ts';
import type { ApplyCommand } from './marker-applier.ts';
import { SkipStamps } from './skip-stamps.ts';

/** How the re-copies treat keys too big for the memory budget or for one RESTORE. */
export interface BigKeyOptions {
  /** Larger payloads go to copyInParts (the destination's proto-max-bulk-len less a margin). */
  maxPayloadBytes: number;
  /**
   * Builds a key's value at an exact stamp in a temporary key on the destination (OversizedKeyCopier's
   * prepare) and returns the stamp and that key; the re-copy's transaction renames it over the key (or
   * deletes the key when `pending` is absent: gone from the source), and the stream is skipped on the
   * key up to that stamp, as for a key read in the transaction.
   */
  copyInParts?: (
    sourceDb: number,
    targetDb: number,
    key: Buffer,
  ) => Promise<{ stamp: Stamp; pending?: { tmp: Buffer; pexpireAt: number } }>;
  /** Keys whose MEMORY USAGE exceeds its inPartsAbove go to copyInParts; absent: every key is DUMPed. */
  budget?: MemoryBudget;
  /**
   * The destination cannot RESTORE the source's payloads (older RDB version): keys are read as data in
   * the same stamped transaction (LogicalChunkReader) and written with type commands.
   */
  logical?: { targetVersion: number; maxCommandBytes: number };
  log?: (message: string) => void;
}

export interface KeyRecopierOptions extends BigKeyOptions {
  source: RedisEndpoint;
  sourceVersion: number;
  dbMap?: Readonly<Record<number, number>>;
  /** Where the skip entries go: the marker's db and skip hash. */
  markerDb: number;
  /** Absent: no skip entries (the notification reader replays no stream to skip). */
  skipKey?: Buffer;
  /** The source is a cluster master: keys are read in one transaction per slot (it refuses more). */
  clusterSource?: boolean;
}

/** The destination writes of one re-copy, to run in one transaction, and the stamp they were read at. */
export interface Recopy {
  commands: ApplyCommand[];
  /** The largest stamp of the reads. */
  stamp: Stamp;
  keys: number;
  /** Each key and the exact stamp its state was read at. */
  keyStamps: { key: Buffer; offset: number }[];
}

const RESTORE = Buffer.from('RESTORE');
/** Keys per MEMORY USAGE pipeline of bigFirst. */
const PROBE_KEYS = 1000;
const REPLACE = Buffer.from('REPLACE');
const ABSTTL = Buffer.from('ABSTTL');
const DEL = Buffer.from('DEL');
const HSET = Buffer.from('HSET');
const RENAME = Buffer.from('RENAME');
const PEXPIREAT = Buffer.from('PEXPIREAT');

/**
 * Copies the current state of given keys (ARCHITECTURE.md, "Exactness" point 4): read in one stamped
 * transaction like a full-sync chunk, written as `RESTORE … REPLACE ABSTTL` (or `DEL` for a key gone
 * from the source), each with its skip entry `HSET <skip hash> <db>:<key> <stamp>`.
 */
export class KeyRecopier {
  private readonly o: KeyRecopierOptions;
  private readonly readers = new Map<number, Promise<DbReader>>();
  private probeWarned = false;

  constructor(o: KeyRecopierOptions) {
    this.o = o;
  }

  /**
   * The keys too big for the budget, then the others: a catch-up re-copies them in this order, so the
   * minutes a big key's copy in parts can take pass before the small keys are read, not between their
   * read and the stream that follows it (the destination would meanwhile expire, by its own clock, keys
   * that a later EXPIRE keeps alive on the source).
   */
  async bigFirst(sourceDb: number, keys: readonly Buffer[]): Promise<Buffer[][]> {
    const budget = this.o.budget;
    if (!budget) return [[...keys]];
    const big: Buffer[] = [];
    const small: Buffer[] = [];
    for (let i = 0; i < keys.length; i += PROBE_KEYS) {
      const part = keys.slice(i, i + PROBE_KEYS);
      const sized = await this.withReader(sourceDb, ({ probe }) => probe.split(part, budget.inPartsAbove));
      big.push(...sized.big);
      small.push(...sized.small);
    }
    return [big, small];
  }

  async read(sourceDb: number, keys: readonly Buffer[]): Promise<Recopy> {
    const budget = this.o.budget;
    const { small, big } = budget
      ? await this.withReader(sourceDb, ({ probe }) => probe.split(keys, budget.inPartsAbove))
      : { small: [...keys], big: [] as Buffer[] };
    const out: Recopy = { commands: [], stamp: { replid: '', offset: -1 }, keys: 0, keyStamps: [] };
    // Big keys first, so the small keys' RESTOREs are applied right after their read, as without big
    // keys: read first and applied minutes later, a RESTORE can carry an expiry that has passed on the
    // destination's clock while a later EXPIRE in the stream kept the key alive on the source.
    for (const key of big) await this.copyBig(out, sourceDb, key);
    // Nothing but big keys: no transaction (an empty input still reads one, for its stamp).
    const groups =
      small.length === 0 && big.length > 0 ? [] : this.o.clusterSource ? groupBySlot(small) : [small];
    const tooBig: Buffer[] = [];
    if (this.o.logical) {
      const read = await Promise.all(groups.map((g) => this.readLogical(sourceDb, g)));
      for (const chunk of read) tooBig.push(...this.appendLogical(out, sourceDb, chunk));
      for (const key of tooBig) await this.copyBig(out, sourceDb, key);
      return out;
    }
    const chunks = await Promise.all(groups.map((g) => this.readChunk(sourceDb, g)));
    for (const chunk of chunks) {
      if (chunk.stamp.offset > out.stamp.offset) out.stamp = chunk.stamp;
      tooBig.push(...this.append(out, sourceDb, chunk, chunk.stamp));
    }
    for (const key of tooBig) await this.copyBig(out, sourceDb, key);
    return out;
  }

  /**
   * One stamped read's writes: each key's state and its skip entry at `stamp`. Returns the keys whose
   * payload is too big for one RESTORE, left for copyBig.
   */
  private append(out: Recopy, sourceDb: number, chunk: Chunk, stamp: Stamp, whole = false): Buffer[] {
    const targetDb = targetDbFor(this.o.dbMap, sourceDb);
    const stampText = Buffer.from(String(stamp.offset));
    const commands = out.commands;
    const tooBig: Buffer[] = [];
    for (let i = 0; i < chunk.keys.length; i++) {
      const key = chunk.keys[i]!;
      const payload = chunk.payloads[i];
      const expireAt = chunk.expireAt[i]!;
      if (!payload) {
        commands.push({ db: targetDb, argv: [DEL, key] });
      } else if (payload.length > this.o.maxPayloadBytes) {
        if (whole || !this.o.copyInParts) throw tooLarge(key, payload.length);
        tooBig.push(key);
        continue;
      } else {
        commands.push({
          db: targetDb,
          argv: [RESTORE, key, Buffer.from(String(expireAt)), payload, REPLACE, ABSTTL],
        });
      }
      this.skip(out, sourceDb, key, stamp, stampText);
    }
    return tooBig;
  }

  /**
   * appendLogical's counterpart of append: each key as DEL, the commands that rebuild it and its
   * PEXPIREAT (all in the re-copy's transaction). Returns the keys left for copyBig (streams, a type
   * change between the reads).
   */
  private appendLogical(out: Recopy, sourceDb: number, chunk: LogicalChunk): Buffer[] {
    const targetDb = targetDbFor(this.o.dbMap, sourceDb);
    const stampText = Buffer.from(String(chunk.stamp.offset));
    const tooBig: Buffer[] = [];
    for (let i = 0; i < chunk.keys.length; i++) {
      const key = chunk.keys[i]!;
      const v = chunk.values[i] ?? null;
      if (v === 'parts') {
        tooBig.push(key);
        continue;
      }
      if (v !== null && 'error' in v) {
        throw new DtsError(
          'KEY_NOT_COPYABLE',
          v.error,
          'leave such keys out of the task (--exclude-prefix), or use a destination of the source’s version',
        );
      }
      const argvs = v === null ? [[DEL, key]] : replaceCommands(key, v.commands, chunk.expireAt[i]!);
      for (const argv of argvs) {
        out.commands.push({
          db: targetDb,
          argv: argv.map((a) => (Buffer.isBuffer(a) ? a : Buffer.from(String(a)))),
        });
      }
      this.skip(out, sourceDb, key, chunk.stamp, stampText);
    }
    if (chunk.stamp.offset > out.stamp.offset) out.stamp = chunk.stamp;
    return tooBig;
  }

  /** The key's skip entry at `stamp`, written in the re-copy's transaction. */
  private skip(out: Recopy, sourceDb: number, key: Buffer, stamp: Stamp, text: Buffer): void {
    if (this.o.skipKey) {
      out.commands.push({
        db: this.o.markerDb,
        argv: [HSET, this.o.skipKey, SkipStamps.field(sourceDb, key), text],
      });
    }
    out.keyStamps.push({ key, offset: stamp.offset });
    out.keys++;
    if (stamp.offset > out.stamp.offset) out.stamp = stamp;
  }

  /**
   * A key too big to read whole: built in parts at its own exact stamp, renamed over the key in the
   * re-copy's transaction with its skip entry. A key written during every attempt is read
   * whole after all, over the budget, and said so: exactness first.
   */
  private async copyBig(out: Recopy, sourceDb: number, key: Buffer): Promise<void> {
    const targetDb = targetDbFor(this.o.dbMap, sourceDb);
    if (!this.o.copyInParts) {
      const chunk = await this.readChunk(sourceDb, [key]);
      this.append(out, sourceDb, chunk, chunk.stamp, true);
      return;
    }
    try {
      const { stamp, pending } = await this.o.copyInParts(sourceDb, targetDb, key);
      // In the batch, after any command on the key queued before this re-copy: those are in its value.
      if (!pending) out.commands.push({ db: targetDb, argv: [DEL, key] });
      else {
        out.commands.push({ db: targetDb, argv: [RENAME, pending.tmp, key] });
        if (pending.pexpireAt >= 0) {
          out.commands.push({ db: targetDb, argv: [PEXPIREAT, key, Buffer.from(String(pending.pexpireAt))] });
        }
      }
      this.skip(out, sourceDb, key, stamp, Buffer.from(String(stamp.offset)));
    } catch (e) {
      if (!isDtsError(e) || e.code !== 'BIG_KEY_BUSY') throw e;
      this.o.log?.(`warning: ${e.message}; re-copying ${printableKey(key)} whole, over the memory budget`);
      if (this.o.logical) {
        const chunk = await this.readLogical(sourceDb, [key]);
        if (this.appendLogical(out, sourceDb, chunk).length > 0) throw e;
        return;
      }
      const chunk = await this.readChunk(sourceDb, [key]);
      this.append(out, sourceDb, chunk, chunk.stamp, true);
    }
  }

  private async readLogical(sourceDb: number, keys: readonly Buffer[]): Promise<LogicalChunk> {
    return this.withReader(sourceDb, ({ logical }) => logical!.read({ cursorAfter: '0', keys: [...keys] }));
  }

  private async readChunk(sourceDb: number, keys: readonly Buffer[]): Promise<Chunk> {
    return this.withReader(sourceDb, ({ reader }) => reader.read({ cursorAfter: '0', keys: [...keys] }));
  }

  /** A read only reads, so after a dropped connection it is simply made again, once, on a new one. */
  private async withReader<T>(sourceDb: number, use: (r: DbReader) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const r = this.readerFor(sourceDb);
      try {
        return await use(await r);
      } catch (e) {
        if (this.readers.get(sourceDb) === r) this.readers.delete(sourceDb);
        void r.then(({ conn }) => conn.destroy()).catch(() => undefined);
        if (attempt >= 2 || !isConnectionLoss(e)) throw e;
      }
    }
  }

  private warnProbe(reason: string): void {
    if (this.probeWarned) return;
    this.probeWarned = true;
    this.o.log?.(
      `warning: the source refuses MEMORY USAGE (${reason}): re-copied keys are read whole, whatever ` +
        'their size; allow MEMORY USAGE for this user to keep them within the memory budget',
    );
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled(this.readers.values());
    await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.conn.close() : undefined)));
    this.readers.clear();
  }

  private readerFor(db: number): Promise<DbReader> {
    let r = this.readers.get(db);
    if (!r) {
      r = RawConnection.open(this.o.source, { db, clientName: 'redis-dts-recopy' }).then((conn) => ({
        conn,
        reader: new StampedChunkReader(conn, {
          sourceVersion: this.o.sourceVersion,
          db,
          dbHasExpiringKeys: true,
        }),
        // Re-copies are read one after the other, so the probe may share the connection.
        probe: new SizeProbe(conn, (reason) => this.warnProbe(reason)),
        ...(this.o.logical
          ? {
              logical: new LogicalChunkReader(conn, {
                sourceVersion: this.o.sourceVersion,
                maxCommandBytes: this.o.logical.maxCommandBytes,
                targetVersion: this.o.logical.targetVersion,
              }),
            }
          : {}),
      }));
      this.readers.set(db, r);
    }
    return r;
  }
}

interface DbReader {
  conn: RawConnection;
  reader: StampedChunkReader;
  probe: SizeProbe;
  logical?: LogicalChunkReader;
}

function isConnectionLoss(e: unknown): boolean {
  return e instanceof DtsError && (e.code === 'CONNECTION_LOST' || e.code === 'UNREACHABLE');
}

function tooLarge(key: Buffer, bytes: number): DtsError {
  return new DtsError(
    'KEY_TOO_LARGE',
    `a key of ${bytes} bytes (DUMP) exceeds the destination's proto-max-bulk-len and cannot be re-copied ` +
      `in one command (${JSON.stringify(key.toString('latin1').slice(0, 60))})`,
    "raise the destination's proto-max-bulk-len (CONFIG SET proto-max-bulk-len)",
  );
}

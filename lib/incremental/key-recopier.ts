import { targetDbFor } from '../commands/key-filter.ts';
import { DtsError } from '../errors.ts';
import { type Chunk, type Stamp, StampedChunkReader } from '../fullsync/stamped-chunk-reader.ts';
import { keySlot } from '../redis/cluster-slot.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import type { ApplyCommand } from './marker-applier.ts';
import { SkipStamps } from './skip-stamps.ts';

export interface KeyRecopierOptions {
  source: RedisEndpoint;
  sourceVersion: number;
  dbMap?: Readonly<Record<number, number>>;
  /** Larger payloads go to copyOversizedKey (the destination's proto-max-bulk-len less a margin). */
  maxPayloadBytes: number;
  copyOversizedKey?: (sourceDb: number, targetDb: number, key: Buffer, expireAt: number) => Promise<void>;
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
const REPLACE = Buffer.from('REPLACE');
const ABSTTL = Buffer.from('ABSTTL');
const DEL = Buffer.from('DEL');
const HSET = Buffer.from('HSET');

/**
 * Copies the current state of given keys (ARCHITECTURE.md, "Exactness" point 4): read in one stamped
 * transaction like a full-sync chunk, written as `RESTORE … REPLACE ABSTTL` (or `DEL` for a key gone
 * from the source), each with its skip entry `HSET <skip hash> <db>:<key> <stamp>`.
 */
export class KeyRecopier {
  private readonly o: KeyRecopierOptions;
  private readonly readers = new Map<number, Promise<{ conn: RawConnection; reader: StampedChunkReader }>>();

  constructor(o: KeyRecopierOptions) {
    this.o = o;
  }

  async read(sourceDb: number, keys: readonly Buffer[]): Promise<Recopy> {
    const groups = this.o.clusterSource ? groupBySlot(keys) : [keys];
    const chunks = await Promise.all(groups.map((g) => this.readChunk(sourceDb, g)));
    const out: Recopy = { commands: [], stamp: chunks[0]!.stamp, keys: 0, keyStamps: [] };
    for (const chunk of chunks) {
      await this.append(out, sourceDb, chunk);
      if (chunk.stamp.offset > out.stamp.offset) out.stamp = chunk.stamp;
    }
    return out;
  }

  /** One stamped read's writes: each key's state and its skip entry. */
  private async append(out: Recopy, sourceDb: number, chunk: Chunk): Promise<void> {
    const targetDb = targetDbFor(this.o.dbMap, sourceDb);
    const stamp = Buffer.from(String(chunk.stamp.offset));
    const commands = out.commands;
    for (let i = 0; i < chunk.keys.length; i++) {
      const key = chunk.keys[i]!;
      const payload = chunk.payloads[i];
      const expireAt = chunk.expireAt[i]!;
      if (!payload) {
        commands.push({ db: targetDb, argv: [DEL, key] });
      } else if (payload.length > this.o.maxPayloadBytes) {
        if (!this.o.copyOversizedKey) throw tooLarge(key, payload.length);
        // Copied in parts outside the transaction: such keys are rare, and the parts reads are not at the
        // stamp (see the README's limits).
        await this.o.copyOversizedKey(sourceDb, targetDb, key, expireAt);
      } else {
        commands.push({
          db: targetDb,
          argv: [RESTORE, key, Buffer.from(String(expireAt)), payload, REPLACE, ABSTTL],
        });
      }
      if (this.o.skipKey) {
        commands.push({
          db: this.o.markerDb,
          argv: [HSET, this.o.skipKey, SkipStamps.field(sourceDb, key), stamp],
        });
      }
      out.keyStamps.push({ key, offset: chunk.stamp.offset });
    }
    out.keys += chunk.keys.length;
  }

  /** A read only reads, so after a dropped connection it is simply made again, once, on a new one. */
  private async readChunk(sourceDb: number, keys: readonly Buffer[]) {
    for (let attempt = 1; ; attempt++) {
      const r = this.readerFor(sourceDb);
      try {
        const { reader } = await r;
        return await reader.read({ cursorAfter: '0', keys: [...keys] });
      } catch (e) {
        if (this.readers.get(sourceDb) === r) this.readers.delete(sourceDb);
        void r.then(({ conn }) => conn.destroy()).catch(() => undefined);
        if (attempt >= 2 || !isConnectionLoss(e)) throw e;
      }
    }
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled(this.readers.values());
    await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.conn.close() : undefined)));
    this.readers.clear();
  }

  private readerFor(db: number): Promise<{ conn: RawConnection; reader: StampedChunkReader }> {
    let r = this.readers.get(db);
    if (!r) {
      r = RawConnection.open(this.o.source, { db, clientName: 'redis-dts-recopy' }).then((conn) => ({
        conn,
        reader: new StampedChunkReader(conn, {
          sourceVersion: this.o.sourceVersion,
          db,
          dbHasExpiringKeys: true,
        }),
      }));
      this.readers.set(db, r);
    }
    return r;
  }
}

function groupBySlot(keys: readonly Buffer[]): Buffer[][] {
  const bySlot = new Map<number, Buffer[]>();
  for (const k of keys) {
    const slot = keySlot(k);
    const group = bySlot.get(slot);
    if (group) group.push(k);
    else bySlot.set(slot, [k]);
  }
  return [...bySlot.values()];
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

import type { KeyPredicate } from '../commands/key-filter.ts';
import { targetDbFor } from '../commands/key-filter.ts';
import type { ProgressSink } from '../progress/progress-reporter.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import type { TargetRouting } from '../redis/target-routing.ts';
import type { HeldLink } from '../replication/held-link.ts';
import type { RdbKeyEntry } from '../replication/rdb/rdb-parser.ts';
import { type RdbSource, readRdbSnapshot } from '../replication/rdb/rdb-snapshot.ts';
import { restoreRefusal } from '../replication/rdb/restore-refusal.ts';
import { RestoreWriter } from './restore-writer.ts';
import { RoutedRestoreWriter } from './routed-restore-writer.ts';

export interface RdbFullSyncOptions {
  /** The source (one master of a cluster source). */
  source: RedisEndpoint;
  routing: TargetRouting;
  keep: KeyPredicate;
  /** Source dbs to copy (absent: every db). */
  dbs?: ReadonlySet<number>;
  dbMap?: Readonly<Record<number, number>>;
  /** Largest payload one RESTORE may carry: bigger values are left to the caller (`oversized`). */
  maxPayloadBytes: number;
  /** Largest serialized value buffered from the RDB (RDB_VALUE_TOO_LARGE above it). */
  maxValueBytes: number;
  /** RESTORE bytes in flight per destination node. */
  maxInFlightBytes: number;
  /** The destination's redis_version, for the error when it refuses a newer RDB version. */
  destinationVersion?: string;
  /**
   * Called before the first key written to a destination db, and awaited: the caller records which dbs
   * an interrupted load may have written (what a restart must empty).
   */
  onFirstWrite?: (targetDb: number) => Promise<void>;
  progress?: ProgressSink;
  label?: string;
}

export interface RdbFullSyncResult {
  /** The snapshot is the source's dataset at this point of its history. */
  replid: string;
  offset: number;
  /** The link, paused right after the RDB: the incremental sync continues on it. */
  link: HeldLink;
  keys: number;
  /** Payload bytes of the keys written. */
  bytes: number;
  /** Keys the filters left out. */
  skipped: number;
  rdbBytes: number;
  /** Values over maxPayloadBytes, not written: copy them in parts with a stamp (a catch-up re-copy). */
  oversized: { db: number; key: Buffer }[];
  /** Source dbs that held keys in the snapshot. */
  dbs: number[];
  seconds: number;
  checksum: 'verified' | 'disabled' | 'absent';
}

/** Keys per RESTORE batch and the bytes after which a batch goes out early. */
const BATCH_KEYS = 500;
const BATCH_BYTES = 1024 * 1024;
/** Batches written at once before the RDB link is held. */
const MAX_BATCHES_IN_FLIGHT = 8;
const PROGRESS_MS = 1000;

interface DbBatch {
  keys: Buffer[];
  payloads: Buffer[];
  expireAt: number[];
  bytes: number;
}

/**
 * The full sync through the source's replication RDB: `PSYNC ? -1`, then each key of the snapshot,
 * filtered, as `RESTORE … REPLACE ABSTTL` batches into its destination db (each key to its slot's node
 * on a cluster). The values are the RDB's own bytes (no decoding, no DUMP on the source: one fork and one
 * sequential read instead of a DUMP per key). Function libraries are left to the incremental sync,
 * which copies them at its first marker. Returns with the link held at the FULLRESYNC offset, so the
 * stream from exactly the snapshot's point continues on the same connection: no catch-up, no dirty set.
 *
 * The RDB's own CRC64 comes at its end: until then the keys written are unconfirmed, and a mismatch fails
 * the load (the destination then holds a partial copy, which the error says).
 */
export async function rdbFullSync(o: RdbFullSyncOptions): Promise<RdbFullSyncResult> {
  const started = Date.now();
  const writers = new Map<number, Promise<RoutedRestoreWriter>>();
  const connections: Promise<RawConnection>[] = [];
  const batches = new Map<number, DbBatch>();
  const inFlight = new Set<Promise<void>>();
  const oversized: { db: number; key: Buffer }[] = [];
  const dbs = new Set<number>();
  let failure: unknown;
  let keys = 0;
  let skipped = 0;
  let bytes = 0;
  let lastProgress = 0;
  let source: RdbSource = { rdbVersion: 0, serverVersion: undefined };

  const writerFor = (targetDb: number): Promise<RoutedRestoreWriter> => {
    let w = writers.get(targetDb);
    if (!w) {
      w = (async () => {
        await o.onFirstWrite?.(targetDb);
        const perNode = o.routing.nodes.map((node) => {
          const c = RawConnection.open(node, { db: targetDb, clientName: 'redis-dts-rdb-load' });
          connections.push(c);
          return c;
        });
        const opened = await Promise.all(perNode);
        return new RoutedRestoreWriter(
          opened.map(
            (c) =>
              new RestoreWriter(c, {
                maxInFlightBytes: o.maxInFlightBytes,
                maxPayloadBytes: o.maxPayloadBytes,
              }),
          ),
          o.routing,
        );
      })();
      writers.set(targetDb, w);
    }
    return w;
  };

  /** Never rejects: the first failure is kept, and ends the load at the next key or at the RDB's end. */
  const send = (sourceDb: number, batch: DbBatch): void => {
    const targetDb = targetDbFor(o.dbMap, sourceDb);
    const p: Promise<void> = writerFor(targetDb)
      .then((w) => w.write(batch))
      .then((r) => {
        const refused = r.errors[0];
        if (refused) {
          throw restoreRefusal(refused.error, {
            key: refused.key,
            db: sourceDb,
            rdbVersion: source.rdbVersion,
            sourceVersion: source.serverVersion,
            destinationVersion: o.destinationVersion,
          });
        }
        for (const i of r.oversized) oversized.push({ db: sourceDb, key: batch.keys[i]! });
      })
      .catch((e: unknown) => {
        failure ??= e;
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  const take = (sourceDb: number): DbBatch | undefined => {
    const b = batches.get(sourceDb);
    if (b) batches.delete(sourceDb);
    return b;
  };

  const add = (entry: RdbKeyEntry): undefined | Promise<unknown> => {
    if ((o.dbs && !o.dbs.has(entry.db)) || !o.keep(entry.key)) {
      skipped++;
      return undefined;
    }
    dbs.add(entry.db);
    let b = batches.get(entry.db);
    if (!b) {
      b = { keys: [], payloads: [], expireAt: [], bytes: 0 };
      batches.set(entry.db, b);
    }
    // The parser's Buffers are views of its buffer for big values and of socket pieces otherwise: a
    // copy keeps the batch independent of what the parser reuses.
    b.keys.push(Buffer.from(entry.key));
    b.payloads.push(Buffer.from(entry.payload));
    b.expireAt.push(entry.expireAtMs ?? 0);
    b.bytes += entry.payload.length + entry.key.length;
    keys++;
    bytes += entry.payload.length;
    report(false);
    if (b.keys.length < BATCH_KEYS && b.bytes < BATCH_BYTES) return undefined;
    send(entry.db, take(entry.db)!);
    if (inFlight.size < MAX_BATCHES_IN_FLIGHT) return undefined;
    // Held until one batch settles: the RDB waits in the socket (and the source's buffers), not here.
    return Promise.race(inFlight).then(() => {
      if (failure) throw failure;
    });
  };

  const report = (final: boolean) => {
    const now = Date.now();
    if (!final && now - lastProgress < PROGRESS_MS) return;
    lastProgress = now;
    o.progress?.update({ phase: 'full-sync', unit: o.label ?? 'rdb', keysDone: keys, bytesDone: bytes });
  };

  let snapshot: Awaited<ReturnType<typeof readRdbSnapshot>> | undefined;
  try {
    snapshot = await readRdbSnapshot(o.source, {
      holdLink: true,
      maxValueBytes: o.maxValueBytes,
      onEntry: (entry, about) => {
        source = about;
        if (failure) throw failure;
        return entry.kind === 'key' ? add(entry) : undefined;
      },
    });
    for (const db of [...batches.keys()]) send(db, take(db)!);
    await Promise.allSettled([...inFlight]);
    if (failure) throw failure;
    report(true);
    return {
      replid: snapshot.replid,
      offset: snapshot.offset,
      link: snapshot.link!,
      keys,
      bytes,
      skipped,
      rdbBytes: snapshot.bytes,
      oversized,
      dbs: [...dbs].sort((a, b) => a - b),
      seconds: (Date.now() - started) / 1000,
      checksum: snapshot.checksum,
    };
  } catch (e) {
    await snapshot?.link?.release().catch(() => undefined);
    await Promise.allSettled([...inFlight]);
    throw e;
  } finally {
    for (const c of connections) await c.then((conn) => conn.close()).catch(() => undefined);
  }
}

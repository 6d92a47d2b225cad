import type { KeyPredicate } from '../commands/key-filter.ts';
import { targetDbFor } from '../commands/key-filter.ts';
import type { ProgressSink } from '../progress/progress-reporter.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import type { TargetRouting } from '../redis/target-routing.ts';
import type { HeldLink } from '../replication/held-link.ts';
import type { RdbRawKey } from '../replication/rdb/rdb-parser.ts';
import { type RdbSource, readRdbSnapshot } from '../replication/rdb/rdb-snapshot.ts';
import { restoreRefusal } from '../replication/rdb/restore-refusal.ts';
import { type EncodedRestores, RestoreEncoder } from './restore-encoder.ts';
import { RestoreWriter } from './restore-writer.ts';

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
  /**
   * Largest serialized value buffered from the RDB: a larger one is walked over as it arrives and left to
   * the caller (`oversized`), or refused (RDB_VALUE_TOO_LARGE) for a stream.
   */
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
  /**
   * Values over maxPayloadBytes or maxValueBytes, not written: copy them in parts with a stamp (the
   * catch-up's re-copy), after the load.
   */
  oversized: { db: number; key: Buffer }[];
  /** Source dbs that held keys in the snapshot. */
  dbs: number[];
  seconds: number;
  checksum: 'verified' | 'disabled' | 'absent';
}

/** Keys per RESTORE batch and the bytes after which a batch goes out early. */
const BATCH_KEYS = 1000;
const BATCH_BYTES = 1024 * 1024;
/** Batches written at once before the RDB link is held. */
const MAX_BATCHES_IN_FLIGHT = 8;
const PROGRESS_MS = 1000;

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
  const nodes = o.routing.nodes.length;
  const writers = new Map<number, Promise<RestoreWriter[]>>();
  const connections: Promise<RawConnection>[] = [];
  /** Per source db, one encoder per destination node. */
  const encoders = new Map<number, RestoreEncoder[]>();
  const inFlight = new Set<Promise<void>>();
  const oversized: { db: number; key: Buffer }[] = [];
  const dbs = new Set<number>();
  let failure: unknown;
  let keys = 0;
  let skipped = 0;
  let bytes = 0;
  let lastProgress = 0;
  let source: RdbSource = { rdbVersion: 0, serverVersion: undefined };

  const writersFor = (targetDb: number): Promise<RestoreWriter[]> => {
    let w = writers.get(targetDb);
    if (!w) {
      w = (async () => {
        await o.onFirstWrite?.(targetDb);
        const opened = await Promise.all(
          o.routing.nodes.map((node) => {
            const c = RawConnection.open(node, { db: targetDb, clientName: 'redis-dts-rdb-load' });
            connections.push(c);
            return c;
          }),
        );
        return opened.map(
          (c) =>
            new RestoreWriter(c, {
              maxInFlightBytes: o.maxInFlightBytes,
              maxPayloadBytes: o.maxPayloadBytes,
            }),
        );
      })();
      writers.set(targetDb, w);
    }
    return w;
  };

  /** Never rejects: the first failure is kept, and ends the load at the next key or at the RDB's end. */
  const send = (sourceDb: number, node: number, batch: EncodedRestores): void => {
    const p: Promise<void> = writersFor(targetDbFor(o.dbMap, sourceDb))
      .then((w) => w[node]!.writeEncoded(batch))
      .then((r) => {
        // Refused keys are views of the batch: copied before its buffer is reused.
        const refused = r.errors[0] && { key: Buffer.from(r.errors[0].key), error: r.errors[0].error };
        batch.release();
        if (refused) {
          throw restoreRefusal(refused.error, {
            key: refused.key,
            db: sourceDb,
            rdbVersion: source.rdbVersion,
            sourceVersion: source.serverVersion,
            destinationVersion: o.destinationVersion,
          });
        }
      })
      .catch((e: unknown) => {
        failure ??= e;
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  const add = (k: RdbRawKey): undefined | Promise<unknown> => {
    if ((o.dbs && !o.dbs.has(k.db)) || !o.keep(k.key)) {
      skipped++;
      return undefined;
    }
    dbs.add(k.db);
    const payload = RestoreEncoder.payloadBytes(k.end - k.start);
    if (payload > o.maxPayloadBytes) {
      // k.key is a view of the RDB piece being parsed: kept, it needs its own bytes.
      oversized.push({ db: k.db, key: Buffer.from(k.key) });
      return undefined;
    }
    let perNode = encoders.get(k.db);
    if (!perNode) {
      perNode = Array.from({ length: nodes }, () => new RestoreEncoder());
      encoders.set(k.db, perNode);
    }
    const node = nodes === 1 ? 0 : o.routing.nodeOf(k.key);
    const enc = perNode[node]!;
    enc.add(k.key, k.expireAtMs ?? 0, k.type, k.src, k.start, k.end, k.rdbVersion);
    keys++;
    bytes += payload;
    if ((keys & 4095) === 0) report(false);
    if (enc.count < BATCH_KEYS && enc.bytes < BATCH_BYTES) return undefined;
    send(k.db, node, enc.take());
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
      // Function libraries: copied by the incremental sync at its first marker (FUNCTION DUMP/RESTORE).
      onEntry: () => undefined,
      onRawKey: (key, about) => {
        source = about;
        if (failure) throw failure;
        return add(key);
      },
      onOversized: (k) => {
        if ((o.dbs && !o.dbs.has(k.db)) || !o.keep(k.key)) skipped++;
        else {
          dbs.add(k.db);
          oversized.push({ db: k.db, key: k.key });
        }
      },
    });
    for (const [db, perNode] of encoders) {
      perNode.forEach((enc, node) => {
        if (enc.count > 0) send(db, node, enc.take());
      });
    }
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

import type { KeyPredicate } from '../commands/key-filter.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import { standaloneRouting, type TargetRouting } from '../redis/target-routing.ts';
import type { RateLimiter } from '../util/rate-limiter.ts';
import { KeyScanner } from './key-scanner.ts';
import { type KeyError, RestoreWriter } from './restore-writer.ts';
import { RoutedRestoreWriter } from './routed-restore-writer.ts';
import { type Chunk, type KeyBatch, type Stamp, StampedChunkReader } from './stamped-chunk-reader.ts';

/** One db of one source shard, copied to one destination db: the unit of checkpointing and of a Map item. */
export interface FullSyncUnit {
  unitId: string;
  sourceDb: number;
  targetDb: number;
  /** Cluster source: the shard (SourceShard.shardId) and the master it was planned on. */
  shardId?: string;
  sourceNode?: { host: string; port: number };
}

/** Everything a checkpoint holds for a unit; counters are cumulative across runs. */
export interface UnitProgress {
  cursor: string;
  done: boolean;
  /** Largest chunk stamp so far: the incremental sync's catch-up bound F for this unit. */
  stamp?: Stamp;
  keysRead: number;
  keysWritten: number;
  /** Keys that vanished between SCAN and DUMP. */
  keysVanished: number;
  /** Keys SCAN returned that the filters dropped. */
  keysFiltered: number;
  /** Keys copied in parts because their payload exceeded the destination's proto-max-bulk-len. */
  keysInParts: number;
  keysFailed: number;
  bytes: number;
  chunks: number;
}

export function freshProgress(): UnitProgress {
  return {
    cursor: '0',
    done: false,
    keysRead: 0,
    keysWritten: 0,
    keysVanished: 0,
    keysFiltered: 0,
    keysInParts: 0,
    keysFailed: 0,
    bytes: 0,
    chunks: 0,
  };
}

export interface CopyUnitOptions {
  source: RedisEndpoint;
  target: RedisEndpoint;
  /** The destination's nodes (a cluster's masters); absent: `target` alone. */
  routing?: TargetRouting;
  unit: FullSyncUnit;
  /** Where to start: a fresh progress, or the unit's checkpoint. */
  from: UnitProgress;
  keep: KeyPredicate;
  sourceVersion: number;
  /**
   * INFO keyspace said this db holds keys with an expiry when the unit started. False lets chunks skip
   * the per-key TTL reads while the db has none (checked atomically per chunk); absent means true.
   */
  dbHasExpiringKeys?: boolean;
  /** The destination's proto-max-bulk-len: larger payloads go to copyOversizedKey. */
  maxPayloadBytes: number;
  copyOversizedKey?: (key: Buffer, expireAt: number) => Promise<void>;
  limiter?: RateLimiter;
  /** Keys per SCAN and per transaction. */
  scanCount?: number;
  /** Chunks read ahead of the destination. */
  maxInFlightChunks?: number;
  /** Bytes written to the destination and not yet acknowledged. */
  maxInFlightBytes?: number;
  /** Stop after the chunk in progress when Date.now() passes this (a Lambda's remaining time). */
  deadline?: number;
  /** Checked between chunks: the task's stop flag. */
  shouldStop?: () => boolean;
  /** After each chunk is acknowledged by the destination, in SCAN order: checkpoint and progress. */
  onChunkApplied?: (progress: UnitProgress) => void;
}

export interface UnitOutcome {
  progress: UnitProgress;
  /** Why the loop ended before the db was done. */
  interrupted?: 'deadline' | 'stop';
  /** Keys the destination refused (not fatal ones: those throw). At most 100 are kept. */
  errors: KeyError[];
}

const KEPT_ERRORS = 100;

/**
 * Copies one unit: SCAN ahead → stamped DUMP transactions (several in flight) → pipelined RESTORE,
 * checkpointing after every acknowledged chunk. Resumes from `from.cursor`.
 */
export async function copyUnit(o: CopyUnitOptions): Promise<UnitOutcome> {
  const progress: UnitProgress = { ...o.from };
  const outcome: UnitOutcome = { progress, errors: [] };
  if (progress.done) return outcome;

  const name = `redis-dts:${o.unit.unitId}`;
  const conns: RawConnection[] = [];
  try {
    const scanConn = await RawConnection.open(o.source, { db: o.unit.sourceDb, clientName: name });
    conns.push(scanConn);
    const readConn = await RawConnection.open(o.source, { db: o.unit.sourceDb, clientName: name });
    conns.push(readConn);
    const routing = o.routing ?? standaloneRouting(o.target);
    const writers: RestoreWriter[] = [];
    for (const node of routing.nodes) {
      const writeConn = await RawConnection.open(node, { db: o.unit.targetDb, clientName: name });
      conns.push(writeConn);
      writers.push(
        new RestoreWriter(writeConn, {
          // The bound is for the whole unit: shared out over the nodes.
          maxInFlightBytes: Math.ceil((o.maxInFlightBytes ?? 64 * 1024 * 1024) / routing.nodes.length),
          maxPayloadBytes: o.maxPayloadBytes,
        }),
      );
    }

    const scanner = new KeyScanner(scanConn, {
      cursor: progress.cursor,
      count: o.scanCount ?? 1000,
      keep: o.keep,
    });
    const reader = new StampedChunkReader(readConn, {
      sourceVersion: o.sourceVersion,
      db: o.unit.sourceDb,
      dbHasExpiringKeys: o.dbHasExpiringKeys ?? true,
      // A cluster master refuses one transaction over many slots.
      boundedStamp: o.unit.sourceNode !== undefined,
    });
    const writer = new RoutedRestoreWriter(writers, routing);
    const maxInFlight = o.maxInFlightChunks ?? 4;

    // Reads are issued as soon as SCAN returns keys; sends to the destination follow in SCAN order
    // (sendChain); acknowledgements are consumed in the same order, which makes every cursor safe.
    let sendChain: Promise<unknown> = Promise.resolve();
    let failed = false;
    const inflight: Promise<Applied>[] = [];
    let filteredSeen = scanner.filtered;

    const settleOldest = async (): Promise<void> => {
      const a = await inflight.shift()!;
      const { chunk, result } = a;
      progress.cursor = chunk.cursorAfter;
      progress.done = chunk.cursorAfter === '0';
      progress.chunks++;
      progress.keysRead += chunk.keys.length;
      progress.keysWritten += result.written + a.inParts;
      progress.keysInParts += a.inParts;
      progress.keysVanished += result.vanished;
      progress.keysFailed += result.errors.length;
      progress.keysFiltered += a.filtered;
      progress.bytes += chunk.bytes;
      if (chunk.keys.length > 0 && (!progress.stamp || chunk.stamp.offset >= progress.stamp.offset)) {
        progress.stamp = chunk.stamp;
      }
      for (const e of result.errors) if (outcome.errors.length < KEPT_ERRORS) outcome.errors.push(e);
      o.onChunkApplied?.({ ...progress });
    };

    for (;;) {
      if (o.shouldStop?.()) {
        outcome.interrupted = 'stop';
        break;
      }
      if (o.deadline !== undefined && Date.now() >= o.deadline) {
        outcome.interrupted = 'deadline';
        break;
      }
      const batch = await scanner.next();
      if (!batch) break;
      const filtered = scanner.filtered - filteredSeen;
      filteredSeen = scanner.filtered;
      await o.limiter?.acquire(batch.keys.length, 0);
      const read = batch.keys.length > 0 ? reader.read(batch) : Promise.resolve(emptyChunk(batch));
      // Observed through `sent` below, unless an earlier chunk failed first: then nobody awaits it.
      read.catch(() => undefined);
      const sent = sendChain.then(async () => {
        if (failed) throw new Error('an earlier chunk failed');
        const chunk = await read;
        await o.limiter?.acquire(0, chunk.bytes);
        return { chunk, acked: writer.write(chunk) };
      });
      sendChain = sent.catch(() => {
        failed = true;
      });
      inflight.push(
        sent.then(async ({ chunk, acked }) => {
          const result = await acked;
          let inParts = 0;
          for (const i of result.oversized) {
            if (!o.copyOversizedKey) {
              result.errors.push({ key: chunk.keys[i]!, error: 'payload larger than proto-max-bulk-len' });
              continue;
            }
            await o.copyOversizedKey(chunk.keys[i]!, chunk.expireAt[i]!);
            inParts++;
          }
          return { chunk, result, inParts, filtered };
        }),
      );
      // Keep rejections from surfacing as unhandled while they wait their turn.
      inflight[inflight.length - 1]!.catch(() => undefined);
      while (inflight.length >= maxInFlight) await settleOldest();
    }
    while (inflight.length > 0) await settleOldest();
    return outcome;
  } finally {
    await Promise.all(conns.map((c) => c.close().catch(() => c.destroy())));
  }
}

interface Applied {
  chunk: Chunk;
  result: { written: number; vanished: number; errors: KeyError[] };
  inParts: number;
  filtered: number;
}

function emptyChunk(batch: KeyBatch): Chunk {
  return {
    cursorAfter: batch.cursorAfter,
    keys: [],
    payloads: [],
    expireAt: [],
    stamp: { replid: '', offset: 0 },
    bytes: 0,
  };
}

import type { KeyPredicate } from '../commands/key-filter.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import { standaloneRouting, type TargetRouting } from '../redis/target-routing.ts';
import { type MemoryBudget, processMemoryBudget, resolveMemoryBudget } from '../util/memory-budget.ts';
import type { RateLimiter } from '../util/rate-limiter.ts';
import { printableKey } from './copy-key-in-parts.ts';
import { KeyScanner } from './key-scanner.ts';
import { LogicalChunkReader } from './logical-chunk-reader.ts';
import { LogicalWriter } from './logical-writer.ts';
import { type KeyError, RestoreWriter, type WriteResult } from './restore-writer.ts';
import { RoutedRestoreWriter } from './routed-restore-writer.ts';
import { SizeProbe } from './size-probe.ts';
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
  /** Keys copied in parts: too big for the memory budget, or their DUMP for proto-max-bulk-len. */
  keysInParts: number;
  /** The first of those keys, printable (at most IN_PARTS_NAMED), for status and the summary. */
  inPartsKeys?: string[];
  /** Peak RSS of the processes that copied this unit (the largest over its runs), bytes. */
  peakRssBytes?: number;
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
  /** The destination's proto-max-bulk-len: larger payloads go to copyInParts. */
  maxPayloadBytes: number;
  /**
   * Copies a key in parts (OversizedKeyCopier, in `after` mode) and returns the stamp read after its
   * last part, which the chunk's stamp then covers. Absent: such keys are refused, one error each.
   */
  copyInParts?: (key: Buffer) => Promise<Stamp>;
  /**
   * The destination cannot RESTORE the source's payloads (an older RDB version): every key is read as
   * data and written with type commands (LogicalChunkReader, LogicalWriter), each command under
   * maxCommandBytes; keys whose type changed while read go to copyInParts.
   */
  logical?: { maxCommandBytes: number; targetVersion: number };
  /** What one process may hold (default: resolveMemoryBudget's); keys over its share go in parts. */
  budget?: MemoryBudget;
  /** Told once when the source refuses MEMORY USAGE (sizes unknown: every key is DUMPed whole). */
  onProbeUnavailable?: (reason: string) => void;
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
export const IN_PARTS_NAMED = 20;

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
    const budget = o.budget ?? processMemoryBudget(resolveMemoryBudget(undefined));
    const scanConn = await RawConnection.open(o.source, { db: o.unit.sourceDb, clientName: name });
    conns.push(scanConn);
    const readConn = await RawConnection.open(o.source, { db: o.unit.sourceDb, clientName: name });
    conns.push(readConn);
    // Its own connection: probes never wait behind the transactions in flight on readConn.
    const probeConn = await RawConnection.open(o.source, { db: o.unit.sourceDb, clientName: name });
    conns.push(probeConn);
    const probe = new SizeProbe(probeConn, (reason) => o.onProbeUnavailable?.(reason));
    const routing = o.routing ?? standaloneRouting(o.target);
    const writeConns: RawConnection[] = [];
    for (const node of routing.nodes) {
      const writeConn = await RawConnection.open(node, { db: o.unit.targetDb, clientName: name });
      conns.push(writeConn);
      writeConns.push(writeConn);
    }
    // The bound is for the whole unit: shared out over the nodes.
    const perNode = Math.ceil((o.maxInFlightBytes ?? budget.inFlightBytes) / routing.nodes.length);

    const scanner = new KeyScanner(scanConn, {
      cursor: progress.cursor,
      count: o.scanCount ?? 1000,
      keep: o.keep,
    });
    // A cluster master refuses one transaction over many slots.
    const boundedStamp = o.unit.sourceNode !== undefined;
    let pipe: ChunkPipe;
    if (o.logical) {
      const reader = new LogicalChunkReader(readConn, {
        sourceVersion: o.sourceVersion,
        maxCommandBytes: o.logical.maxCommandBytes,
        targetVersion: o.logical.targetVersion,
        boundedStamp,
      });
      const writer = new LogicalWriter(writeConns, routing, perNode);
      pipe = { read: (b) => reader.read(b), write: (c) => writer.write(c as never) };
    } else {
      const reader = new StampedChunkReader(readConn, {
        sourceVersion: o.sourceVersion,
        db: o.unit.sourceDb,
        dbHasExpiringKeys: o.dbHasExpiringKeys ?? true,
        boundedStamp,
      });
      const writers = writeConns.map(
        (c) => new RestoreWriter(c, { maxInFlightBytes: perNode, maxPayloadBytes: o.maxPayloadBytes }),
      );
      const writer = new RoutedRestoreWriter(writers, routing);
      pipe = { read: (b) => reader.read(b), write: (c) => writer.write(c as Chunk) };
    }
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
      progress.keysRead += chunk.keys.length + a.big;
      progress.keysWritten += result.written + a.inParts.length;
      progress.keysInParts += a.inParts.length;
      if (a.inParts.length > 0) {
        const named = progress.inPartsKeys ?? [];
        for (const k of a.inParts) if (named.length < IN_PARTS_NAMED) named.push(printableKey(k));
        progress.inPartsKeys = named;
      }
      progress.keysVanished += result.vanished;
      progress.keysFailed += result.errors.length;
      progress.keysFiltered += a.filtered;
      progress.bytes += chunk.bytes;
      progress.peakRssBytes = Math.max(progress.peakRssBytes ?? 0, process.resourceUsage().maxRSS * 1024);
      if (a.stamp && (!progress.stamp || a.stamp.offset >= progress.stamp.offset)) progress.stamp = a.stamp;
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
      const sized = await probe.split(batch.keys, budget.inPartsAbove);
      // Released once the chunk is acknowledged: DUMPs in flight stay within the process's share.
      const release = await budget.reserve(sized.smallBytes);
      const small = { cursorAfter: batch.cursorAfter, keys: sized.small };
      const read = small.keys.length > 0 ? pipe.read(small) : Promise.resolve(emptyChunk(small));
      // Observed through `sent` below, unless an earlier chunk failed first: then nobody awaits it.
      read.catch(() => undefined);
      const sent = sendChain.then(async () => {
        if (failed) throw new Error('an earlier chunk failed');
        const chunk = await read;
        await o.limiter?.acquire(0, chunk.bytes);
        return { chunk, acked: pipe.write(chunk) };
      });
      sendChain = sent.catch(() => {
        failed = true;
      });
      const applied = sent.then(async ({ chunk, acked }): Promise<Applied> => {
        const result = await acked;
        let stamp = chunk.keys.length > 0 ? chunk.stamp : undefined;
        const inParts: Buffer[] = [];
        const big = [...result.oversized.map((i) => chunk.keys[i]!), ...sized.big];
        for (const key of big) {
          if (!o.copyInParts) {
            result.errors.push({ key, error: 'too big for one RESTORE and no copy in parts was given' });
            continue;
          }
          const after = await o.copyInParts(key);
          if (!stamp || after.offset >= stamp.offset) stamp = after;
          inParts.push(key);
        }
        return { chunk, result, inParts, big: sized.big.length, filtered, ...(stamp ? { stamp } : {}) };
      });
      inflight.push(applied.finally(release));
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

/** What copyUnit needs of a chunk, whichever reader made it. */
type ReadChunk = Pick<Chunk, 'cursorAfter' | 'keys' | 'stamp' | 'bytes'>;

/** A reader and its writer: DUMP and RESTORE, or the logical pair for an older destination. */
interface ChunkPipe {
  read(batch: KeyBatch): Promise<ReadChunk>;
  write(chunk: ReadChunk): Promise<WriteResult>;
}

interface Applied {
  chunk: ReadChunk;
  result: { written: number; vanished: number; errors: KeyError[] };
  /** Keys copied in parts (probed big, or DUMPed too big for one RESTORE). */
  inParts: Buffer[];
  /** Keys the probe left out of the chunk's DUMP. */
  big: number;
  filtered: number;
  /** The chunk's stamp, or a later one read after a copy in parts; absent for a chunk without keys. */
  stamp?: Stamp;
}

function emptyChunk(batch: KeyBatch): ReadChunk {
  return { cursorAfter: batch.cursorAfter, keys: [], stamp: { replid: '', offset: 0 }, bytes: 0 };
}

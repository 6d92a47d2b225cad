import type { Redis } from 'ioredis';
import { type KeyFilterSpec, makeKeyFilter } from '../commands/key-filter.ts';
import { DtsError } from '../errors.ts';
import { type ProgressSink, silentProgress } from '../progress/progress-reporter.ts';
import { connectAdmin, type ServerInfo, serverInfo } from '../redis/admin-client.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import type { TaskStore, UnitCheckpoint } from '../state/task-store.ts';
import { RateLimiter } from '../util/rate-limiter.ts';
import { CheckpointWriter } from './checkpoint-writer.ts';
import { copyUnit, freshProgress } from './copy-unit.ts';
import { assertTargetEmpty } from './existing-keys.ts';
import { OversizedKeyCopier, protoMaxBulkLen } from './oversized-key-copier.ts';
import { planUnits } from './plan-units.ts';
import type { KeyError } from './restore-writer.ts';
import { unitCheckpoint } from './unit-checkpoint.ts';

export interface FullSyncJobOptions {
  taskId: string;
  source: RedisEndpoint;
  target: RedisEndpoint;
  /** Source dbs to copy; absent = every non-empty db. */
  dbs?: number[];
  dbMap?: Record<number, number>;
  keyFilter?: KeyFilterSpec;
  existingKeys: 'block' | 'overwrite';
  throttle?: { maxKeysPerSecond?: number; maxBytesPerSecond?: number };
  chunkKeys?: number;
  maxInFlightBytes?: number;
  checkpointIntervalMs?: number;
  store: TaskStore;
  progress?: ProgressSink;
  /** Aborting stops cleanly after the chunks in flight (SIGINT, the task's stop flag). */
  signal?: AbortSignal;
}

export interface FullSyncSummary {
  taskId: string;
  units: UnitCheckpoint[];
  keysWritten: number;
  bytes: number;
  /** Time spent copying in this run (a resumed run counts only itself). */
  seconds: number;
  keysThisRun: number;
  bytesThisRun: number;
  stopped: boolean;
  keyErrors: KeyError[];
}

/** RESTORE's own arguments beside the payload must fit under proto-max-bulk-len too. */
const RESTORE_OVERHEAD = 1024;

/**
 * The local full sync of one task: plan units, refuse a non-empty destination under `block`, copy
 * every unit from its checkpoint, and report. Every compute shape reuses its parts (planUnits,
 * copyUnit, CheckpointWriter); the state machine's CopyChunk step runs copyUnit with a deadline.
 */
export async function runFullSync(o: FullSyncJobOptions): Promise<FullSyncSummary> {
  const progress = o.progress ?? silentProgress;
  const admins: Redis[] = [];
  try {
    const src = await connectAdmin(o.source);
    admins.push(src);
    const tgt = await connectAdmin(o.target);
    admins.push(tgt);
    const [srcInfo, tgtInfo] = await Promise.all([serverInfo(src), serverInfo(tgt)]);
    rejectClusters(o, srcInfo, tgtInfo);
    const maxPayloadBytes = (await protoMaxBulkLen(tgt)) - RESTORE_OVERHEAD;

    const units = planUnits({ keyspace: srcInfo.keyspace, dbs: o.dbs, dbMap: o.dbMap });
    const saved = new Map((await o.store.listCheckpoints(o.taskId)).map((c) => [c.value.unitId, c]));
    if (saved.size === 0 && o.existingKeys === 'block') {
      await assertTargetEmpty(tgt, o.target, [...new Set(units.map((u) => u.targetDb))]);
    }
    const writer = new CheckpointWriter(
      o.store,
      o.taskId,
      new Map([...saved].map(([unitId, c]) => [unitId, c.version])),
      { minIntervalMs: o.checkpointIntervalMs },
    );
    // Checkpoints exist before the first write: a crash before any chunk still counts as "started",
    // so the rerun does not mistake our own keys for a non-empty destination.
    const checkpoints = new Map<string, UnitCheckpoint>();
    for (const u of units) {
      const cp = saved.get(u.unitId)?.value ?? unitCheckpoint(u, freshProgress());
      checkpoints.set(u.unitId, cp);
      if (!saved.has(u.unitId)) writer.update(cp);
    }
    await writer.flush();

    const limiter = new RateLimiter({
      keysPerSecond: o.throttle?.maxKeysPerSecond,
      bytesPerSecond: o.throttle?.maxBytesPerSecond,
    });
    const keysTotal = units.reduce((n, u) => n + (srcInfo.keyspace[u.sourceDb]?.keys ?? 0), 0);
    const doneBefore = sum(checkpoints, (c) => c.keysRead + c.keysFiltered);
    const bytesBefore = sum(checkpoints, (c) => c.bytes);
    const keyErrors: KeyError[] = [];
    const started = performance.now();
    let stopped = false;
    const stopFlag = new StopFlagPoller(o.store, o.taskId);

    for (const unit of units) {
      const from = checkpoints.get(unit.unitId)!;
      if (from.done) continue;
      progress.log(`copying ${unit.unitId}: source db ${unit.sourceDb} → target db ${unit.targetDb}`, {
        unit: unit.unitId,
        resumeCursor: from.cursor,
      });
      const oversized = new OversizedKeyCopier({
        source: o.source,
        target: o.target,
        unit,
        taskId: o.taskId,
        protoMaxBulkLen: maxPayloadBytes + RESTORE_OVERHEAD,
        onKey: (key) => progress.log(`copying big key ${key} in parts`, { unit: unit.unitId }),
      });
      try {
        const outcome = await copyUnit({
          source: o.source,
          target: o.target,
          unit,
          from,
          keep: makeKeyFilter(o.keyFilter),
          sourceVersion: srcInfo.versionNum,
          dbHasExpiringKeys: (srcInfo.keyspace[unit.sourceDb]?.expires ?? 0) > 0,
          maxPayloadBytes,
          copyOversizedKey: (key, expireAt) => oversized.copy(key, expireAt),
          limiter,
          scanCount: o.chunkKeys,
          maxInFlightBytes: o.maxInFlightBytes,
          shouldStop: () => o.signal?.aborted === true || stopFlag.requested,
          onChunkApplied: (p) => {
            const cp = unitCheckpoint(unit, p);
            checkpoints.set(unit.unitId, cp);
            writer.update(cp);
            progress.update({
              phase: 'full sync',
              unit: unit.unitId,
              keysDone: sum(checkpoints, (c) => c.keysRead + c.keysFiltered),
              keysTotal,
              bytesDone: sum(checkpoints, (c) => c.bytes) - bytesBefore,
            });
          },
        });
        keyErrors.push(...outcome.errors);
        if (outcome.interrupted) {
          stopped = true;
          break;
        }
      } finally {
        await oversized.close();
        await writer.flush().catch(() => undefined);
      }
    }
    stopFlag.close();
    await writer.flush();
    progress.finish();
    const all = [...checkpoints.values()];
    return {
      taskId: o.taskId,
      units: all,
      keysWritten: sum(checkpoints, (c) => c.keysWritten),
      bytes: sum(checkpoints, (c) => c.bytes),
      seconds: (performance.now() - started) / 1000,
      keysThisRun: sum(checkpoints, (c) => c.keysRead + c.keysFiltered) - doneBefore,
      bytesThisRun: sum(checkpoints, (c) => c.bytes) - bytesBefore,
      stopped,
      keyErrors,
    };
  } finally {
    progress.finish();
    await Promise.all(admins.map((a) => a.quit().catch(() => a.disconnect())));
  }
}

/** `redis-dts stop` sets a flag in the store; copying checks a cached copy between chunks. */
class StopFlagPoller {
  requested = false;
  private readonly timer: NodeJS.Timeout;

  constructor(store: TaskStore, taskId: string, intervalMs = 1000) {
    this.timer = setInterval(() => {
      store.isStopRequested(taskId).then(
        (r) => {
          this.requested ||= r;
        },
        () => undefined, // a missed poll is retried at the next tick
      );
    }, intervalMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }
}

function sum(m: Map<string, UnitCheckpoint>, f: (c: UnitCheckpoint) => number): number {
  let n = 0;
  for (const c of m.values()) n += f(c);
  return n;
}

function rejectClusters(o: FullSyncJobOptions, srcInfo: ServerInfo, tgtInfo: ServerInfo): void {
  for (const [ep, info] of [
    [o.source, srcInfo],
    [o.target, tgtInfo],
  ] as const) {
    if (info.clusterEnabled) {
      throw new DtsError(
        'CLUSTER_NOT_SUPPORTED',
        `${describeEndpoint(ep)} is a Redis Cluster node; cluster sources and destinations are not supported yet`,
        'use standalone (or one primary of a sentinel setup) for now',
      );
    }
  }
}

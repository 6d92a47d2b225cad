import type { Redis } from 'ioredis';
import { loadCatalogue } from '../commands/catalogue.ts';
import { makeKeyFilter, targetDbFor } from '../commands/key-filter.ts';
import { DtsError, isDtsError } from '../errors.ts';
import { copyUnit, freshProgress } from '../fullsync/copy-unit.ts';
import { numericDbMap } from '../fullsync/unit-checkpoint.ts';
import {
  type IncrementalOutcome,
  type IncrementalProgress,
  IncrementalSync,
} from '../incremental/incremental-sync.ts';
import { type ProgressSink, silentProgress } from '../progress/progress-reporter.ts';
import { connectAdmin } from '../redis/admin-client.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import type { TaskStore, UnitCheckpoint } from '../state/task-store.ts';
import type { TaskSpec } from '../task/spec.ts';
import { SHARD_ID } from './capture-start-step.ts';
import { SampledVerification } from './sampled-verification.ts';
import { type SecretValues, stepEndpoints } from './step-endpoints.ts';
import type { TaskStepInput } from './step-types.ts';
import { StopFlag } from './stop-flag.ts';
import { UnitCopyContext } from './unit-copy-context.ts';

export interface ReplicateOptions {
  store: TaskStore;
  secrets?: SecretValues;
  /** A Lambda window ends here (checkpointed); absent: run until stopped or caught up. */
  deadline?: number;
  progress?: ProgressSink;
  /** Every second, the incremental figures (the Fargate replicator turns them into metrics). */
  onProgress?: (p: IncrementalProgress) => void;
  /** Aborted: stop cleanly, as the task's stop flag does (SIGTERM of the Fargate task). */
  signal?: AbortSignal;
}

const PROGRESS_LOG_MS = 2000;

/**
 * The incremental phase of a task, for every compute shape: the Fargate replicator and the local runner
 * call it without a deadline, an IncrementalWindow Lambda with one. It starts from the shard's captured
 * offset and the full sync's largest stamp, or from the destination's marker when there is one.
 */
export async function replicateStep(input: TaskStepInput, o: ReplicateOptions): Promise<IncrementalOutcome> {
  const { spec, taskId } = input;
  const { source, target } = stepEndpoints(spec, o.secrets);
  const shard = await o.store.getShard(taskId, SHARD_ID);
  if (!shard) {
    throw new DtsError(
      'NO_START_OFFSET',
      `task '${taskId}' has no captured start offset, so the changes to replay are unknown`,
      'run the task from the start: its CaptureStart state records the offset before the full sync',
    );
  }
  const { replid, startOffset } = shard.value;
  const units = (await o.store.listCheckpoints(taskId)).map((c) => c.value);
  let bound = startOffset;
  for (const u of units) {
    if (!u.stamp) continue;
    if (u.stamp.replid !== replid) {
      throw new DtsError(
        'SOURCE_CHANGED',
        `unit ${u.unitId} was copied under replication id ${u.stamp.replid}, but the task started under ${replid} ` +
          '(the source failed over or restarted during the full sync)',
        'run the task again with a fresh full sync (a new task id, or redis-dts stop and delete its state)',
      );
    }
    bound = Math.max(bound, u.stamp.offset);
  }
  const syncedDbs = [...new Set(units.map((u) => u.sourceDb))].sort((a, b) => a - b);
  const lowestDb = lowestSourceDb(spec, units);
  const progress = o.progress ?? silentProgress;

  const stop = new StopFlag(o.store, taskId);
  let context: UnitCopyContext | undefined;
  let admin: Redis | undefined;
  let lastLog = 0;
  let sampled: SampledVerification | undefined;
  try {
    context = await UnitCopyContext.open({ source, target, spec, taskId });
    admin = await connectAdmin(source);
    const copy = context;
    const catalogue = await loadCatalogue(admin);
    const keep = makeKeyFilter(spec.keyFilter);
    const filter = {
      catalogue,
      keep,
      ...(spec.dbs ? { selectedDbs: new Set(spec.dbs) } : {}),
      ...(spec.dbMap ? { dbMap: numericDbMap(spec.dbMap) } : {}),
    };
    await o.store.updateTask(taskId, { phase: 'incremental' });
    sampled = new SampledVerification({
      spec,
      taskId,
      source,
      target,
      store: o.store,
      log: (m) => progress.log(m, { phase: 'incremental' }),
    });
    sampled.start();
    const sync = new IncrementalSync({
      source,
      target,
      taskId,
      shardId: SHARD_ID,
      filter,
      markerDb: markerDbFor(spec, units),
      start: { replid, offset: startOffset },
      catchUpBound: bound,
      syncedDbs,
      resyncDb: async (db) => {
        const unit = { unitId: `resync-db${db}`, sourceDb: db, targetDb: targetDbFor(filter.dbMap, db) };
        const conn = await RawConnection.open(target, { db: unit.targetDb, clientName: 'redis-dts-resync' });
        try {
          await conn.call(['FLUSHDB']);
        } finally {
          await conn.close();
        }
        const outcome = await copyUnit({ ...copy.copyOptions(unit, progress), from: freshProgress() });
        return outcome.progress.stamp?.offset ?? 0;
      },
      sourceVersion: copy.info.versionNum,
      maxPayloadBytes: copy.maxPayloadBytes,
      copyOversizedKey: async (sourceDb, targetDb, key, expireAt) =>
        copy.oversizedCopier({ unitId: `recopy-db${sourceDb}`, sourceDb, targetDb }).copy(key, expireAt),
      ...(spec.incremental.heartbeat.enabled
        ? {
            heartbeat: {
              prefix: spec.incremental.heartbeat.prefix,
              intervalMs: spec.incremental.heartbeat.intervalMs,
              db: lowestDb,
            },
          }
        : {}),
      until: spec.incremental.until,
      deadline: o.deadline,
      shouldStop: () => stop.stopRequested || o.signal?.aborted === true,
      log: (m) => progress.log(m, { phase: 'incremental' }),
      onProgress: (p) => {
        o.onProgress?.(p);
        const now = Date.now();
        if (now - lastLog < PROGRESS_LOG_MS) return;
        lastLog = now;
        const lag = p.lagMs === undefined ? 'n/a' : `${p.lagMs} ms`;
        progress.log(
          `${p.phase}: ${Math.round(p.opsPerSecond)} ops/s, lag ${lag}, ${p.bytesBehind ?? 'n/a'} bytes behind, ` +
            `${p.commandsApplied} applied, ${p.keysRecopied} keys re-copied`,
          { ...p, ...memoryFields() },
        );
      },
    });
    const outcome = await sync.run().catch((e: unknown) => {
      throw isDtsError(e) && e.code === 'BACKLOG_LOST' && spec.incremental.onBacklogLost === 'resync'
        ? new DtsError(
            e.code,
            `${e.message} (incremental.onBacklogLost "resync" is not built yet, so the task fails)`,
            e.fix,
          )
        : e;
    });
    await o.store.putShard(
      taskId,
      {
        ...shard.value,
        appliedOffset: outcome.position.offset,
        phase: outcome.ended,
        commandsApplied: outcome.progress.commandsApplied,
        keysRecopied: outcome.progress.keysRecopied,
        updatedAt: new Date().toISOString(),
      },
      shard.version,
    );
    return outcome;
  } finally {
    await sampled?.stop();
    stop.close();
    const a = admin;
    await a?.quit().catch(() => a.disconnect());
    await context?.close();
  }
}

/** The source db the heartbeat goes to: the lowest synced one. */
function lowestSourceDb(spec: TaskSpec, units: UnitCheckpoint[]): number {
  if (spec.dbs) return Math.min(...spec.dbs);
  return units.reduce((low, u) => Math.min(low, u.sourceDb), units.length > 0 ? Number.MAX_SAFE_INTEGER : 0);
}

/** The destination db of the marker: one the task writes anyway (the lowest synced db's target). */
export function markerDbFor(spec: TaskSpec, units: UnitCheckpoint[]): number {
  return targetDbFor(numericDbMap(spec.dbMap), lowestSourceDb(spec, units));
}

/** Memory of this process for the progress line: RSS, the JS heap, and buffers outside it. */
function memoryFields(): { rssMb: number; heapMb: number; buffersMb: number } {
  const m = process.memoryUsage();
  const mb = (n: number) => Math.round(n / 2 ** 20);
  return { rssMb: mb(m.rss), heapMb: mb(m.heapTotal), buffersMb: mb(m.arrayBuffers) };
}

import type { Redis } from 'ioredis';
import { loadCatalogue } from '../commands/catalogue.ts';
import type { FilterContext } from '../commands/command-filter.ts';
import { makeKeyFilter, targetDbFor } from '../commands/key-filter.ts';
import { DtsError, isDtsError } from '../errors.ts';
import { taskEvents } from '../events/task-events.ts';
import type { OversizedKeyCopier } from '../fullsync/oversized-key-copier.ts';
import { numericDbMap } from '../fullsync/unit-checkpoint.ts';
import { IncrementalSync } from '../incremental/incremental-sync.ts';
import type { IncrementalOutcome, IncrementalProgress } from '../incremental/incremental-types.ts';
import { combineOutcomes, combineProgress } from '../incremental/shard-progress.ts';
import type { SourceSlotMoves } from '../incremental/source-slot-moves.ts';
import { type ProgressSink, silentProgress } from '../progress/progress-reporter.ts';
import { connectAdmin } from '../redis/admin-client.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { refreshClusterRouting, type TargetRouting } from '../redis/target-routing.ts';
import type { ShardCheckpoint, TaskStore, UnitCheckpoint, Versioned } from '../state/task-store.ts';
import type { TaskSpec } from '../task/spec.ts';
import { MAX_RESYNCS, markForResync, resyncWanted } from './backlog-resync.ts';
import { IncrementalSignals } from './incremental-signals.ts';
import { fullSyncCompleted, fullSyncRedone, markFullSyncStarted } from './lifecycle-events.ts';
import { notificationReplicateStep } from './notification-replicate-step.ts';
import { loadShardRdb, needsRdbLoad, redoInterruptedRdbLoads } from './rdb-shard-load.ts';
import type { ReplicateOptions } from './replicate-options.ts';
import { resyncDb } from './resync-db.ts';
import { SampledVerification } from './sampled-verification.ts';
import { openSlotMoves } from './slot-moves-setup.ts';
import { STANDALONE_SHARD_ID, shardMaster, sourceAt } from './source-shards.ts';
import { stepEndpoints } from './step-endpoints.ts';
import type { TaskStepInput } from './step-types.ts';
import { StopFlag } from './stop-flag.ts';
import { UnitCopyContext } from './unit-copy-context.ts';

export type { ReplicateOptions };

const PROGRESS_LOG_MS = 2000;

/**
 * The incremental phase of a task, for every compute shape: the Fargate replicator and the local runner
 * call it without a deadline, an IncrementalWindow Lambda with one. It starts from the shard's captured
 * offset and the full sync's largest stamp, or from the destination's marker when there is one.
 */
export async function replicateStep(input: TaskStepInput, o: ReplicateOptions): Promise<IncrementalOutcome> {
  if (input.spec.incremental.reader === 'notifications') return notificationReplicateStep(input, o);
  const { spec, taskId } = input;
  const { source, target } = stepEndpoints(spec, o.secrets);
  let shards = await o.store.listShards(taskId);
  if (shards.length === 0) {
    throw new DtsError(
      'NO_START_OFFSET',
      `task '${taskId}' has no captured start offset, so the changes to replay are unknown`,
      'run the task from the start: its CaptureStart state records the offset before the full sync',
    );
  }
  const units = (await o.store.listCheckpoints(taskId)).map((c) => c.value);
  const progress = o.progress ?? silentProgress;

  const stop = new StopFlag(o.store, taskId);
  let context: UnitCopyContext | undefined;
  let admin: Redis | undefined;
  let sampled: SampledVerification | undefined;
  let signals: IncrementalSignals | undefined;
  try {
    context = await UnitCopyContext.open({ source, target, spec, taskId });
    admin = await connectAdmin(source);
    const catalogue = await loadCatalogue(admin);
    const filter: FilterContext = {
      catalogue,
      keep: makeKeyFilter(spec.keyFilter),
      limits: { maxBulkLen: context.maxBulk },
      ...(spec.dbs ? { selectedDbs: new Set(spec.dbs) } : {}),
      ...(spec.dbMap ? { dbMap: numericDbMap(spec.dbMap) } : {}),
    };
    shards = await redoInterruptedRdbLoads(shards, {
      spec,
      taskId,
      store: o.store,
      copy: context,
      markerDb: markerDbFor(spec, units),
      log: (m) => progress.log(m, { phase: 'full-sync' }),
    });
    const loading = shards.some((s) => needsRdbLoad(s.value));
    await o.store.updateTask(taskId, { phase: loading ? 'full-sync' : 'incremental' });
    if (loading) await markFullSyncStarted(o.store, taskId);
    if (spec.syncType === 'full')
      return await rdbFullOnly(shards, { ...o, spec, taskId, source, copy: context, progress });
    sampled = new SampledVerification({
      spec,
      taskId,
      source,
      target,
      store: o.store,
      log: (m) => progress.log(m, { phase: 'incremental' }),
      ...(o.onSampledVerification ? { onResult: o.onSampledVerification } : {}),
    });
    sampled.start();
    signals = new IncrementalSignals({
      store: o.store,
      taskId,
      spec,
      shards: shards.length,
      log: (m) => progress.log(m, { phase: 'incremental' }),
    });
    const signal = signals;
    for (let resyncs = 0; ; resyncs++) {
      // One shard failing stops the others (cleanly, at their marker) before the error is raised.
      const failed = new AbortController();
      const latest = new Map<string, IncrementalProgress>();
      // A cluster source: who owns which slot now, shared by the shards to follow slots moving between them.
      const moves = await openSlotMoves(source, shards, (m) => progress.log(m, { phase: 'incremental' }));
      let lastLog = 0;
      const shared: ShardRunShared = {
        input,
        source,
        target,
        units,
        filter,
        copy: context,
        progress,
        deadline: o.deadline,
        ...(moves ? { moves } : {}),
        shouldStop: () =>
          stop.stopRequested || o.signal?.aborted === true || failed.signal.aborted || signal.cutOverAccepted,
        register: (shardId, sync) => signal.register(shardId, sync),
        rdbLoaded: () => rdbCompleted(o.store, spec, taskId),
        onProgress: (shardId, p) => {
          latest.set(shardId, p);
          if (latest.size < shards.length) return;
          const all = combineProgress([...latest.values()]);
          o.onProgress?.(all);
          signal.onProgress(all);
          const now = Date.now();
          if (now - lastLog < PROGRESS_LOG_MS) return;
          lastLog = now;
          const lag = all.lagMs === undefined ? 'n/a' : `${all.lagMs} ms`;
          progress.log(
            `${all.phase}: ${Math.round(all.opsPerSecond)} ops/s, lag ${lag}, ${all.bytesBehind ?? 'n/a'} bytes behind, ` +
              `${all.commandsApplied} applied, ${all.keysRecopied} keys re-copied`,
            { ...all, ...memoryFields() },
          );
        },
      };
      const results = await Promise.allSettled(
        shards.map((shard) =>
          replicateShard(shard, shared, o.store).catch((e: unknown) => {
            failed.abort();
            throw e;
          }),
        ),
      ).finally(() => moves?.close());
      const failure = results.find((r) => r.status === 'rejected');
      if (!failure) {
        return combineOutcomes(results.map((r) => (r as PromiseFulfilledResult<IncrementalOutcome>).value));
      }
      const lost = results.find((r) => r.status === 'rejected' && resyncWanted(r.reason, spec));
      const backlog = results.find(
        (r): r is PromiseRejectedResult =>
          r.status === 'rejected' && isDtsError(r.reason) && r.reason.code === 'BACKLOG_LOST',
      );
      if (backlog) {
        const e = backlog.reason as DtsError;
        await taskEvents(spec).emit('Backlog Lost', {
          taskId,
          action: lost && resyncs < MAX_RESYNCS ? 'resync' : 'fail',
          cause: e.message,
          fix: e.fix,
        });
      }
      if (!lost || resyncs >= MAX_RESYNCS) throw failure.reason;
      const redo = { spec, taskId, store: o.store, units, copy: context, markerDb: markerDbFor(spec, units) };
      const log = (m: string) => progress.log(m, { phase: 'full-sync' });
      const marked = await markForResync(
        (lost as PromiseRejectedResult).reason,
        await o.store.listShards(taskId),
        {
          ...redo,
          log,
        },
      );
      shards = await redoInterruptedRdbLoads(marked, { ...redo, log });
      await o.store.updateTask(taskId, { phase: 'full-sync', ...fullSyncRedone() });
    }
  } finally {
    await sampled?.stop();
    signals?.close();
    stop.close();
    const a = admin;
    await a?.quit().catch(() => a.disconnect());
    await context?.close();
  }
}

interface ShardRunShared {
  input: TaskStepInput;
  source: RedisEndpoint;
  target: RedisEndpoint;
  units: UnitCheckpoint[];
  filter: FilterContext;
  copy: UnitCopyContext;
  progress: ProgressSink;
  deadline: number | undefined;
  moves?: SourceSlotMoves;
  shouldStop: () => boolean;
  onProgress: (shardId: string, p: IncrementalProgress) => void;
  /** The sync a shard runs now, for the cut-over's drained check. */
  register: (shardId: string, sync: IncrementalSync) => void;
  /** A shard finished its RDB load (the last one sends Full Sync Completed). */
  rdbLoaded: () => Promise<void>;
}

/** One source shard's stream, from its captured offset and its units' largest stamp, or from its marker. */
async function replicateShard(
  shard: Versioned<ShardCheckpoint>,
  s: ShardRunShared,
  store: TaskStore,
): Promise<IncrementalOutcome> {
  const { spec, taskId } = s.input;
  const log = (m: string) =>
    s.progress.log(shard.value.node ? `shard ${shard.value.shardId}: ${m}` : m, {
      phase: 'incremental',
      shard: shard.value.shardId,
    });
  const rdb = shard.value.rdb
    ? await loadShardRdb(shard, {
        spec,
        taskId,
        store,
        source: sourceAt(s.source, shard.value.node),
        copy: s.copy,
        progress: s.progress,
        log,
      })
    : undefined;
  if (rdb) {
    shard = rdb.shard;
    if (rdb.loaded) {
      await store.updateTask(taskId, { phase: 'incremental' });
      await s.rdbLoaded();
    }
  }
  const { shardId, replid, startOffset, node, tag } = shard.value;
  // A shard loaded from an RDB starts at its snapshot: the scan units (of a resynced task) are history.
  const units = shard.value.rdb ? [] : s.units.filter((u) => (u.shardId ?? STANDALONE_SHARD_ID) === shardId);
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
  const source = sourceAt(s.source, node);
  const copy = s.copy;
  // One copier (and its connections) per db pair, closed with the context.
  const copiers = new Map<number, OversizedKeyCopier>();
  const recopiers = {
    copierFor(sourceDb: number, targetDb: number): OversizedKeyCopier {
      let c = copiers.get(sourceDb);
      if (!c) {
        c = copy.oversizedCopier(
          { unitId: `recopy-${shardId}-db${sourceDb}`, sourceDb, targetDb },
          s.progress,
          source,
        );
        copiers.set(sourceDb, c);
      }
      return c;
    },
  };
  const makeSync = (routing: TargetRouting) => {
    const sync = new IncrementalSync({
      source,
      target: s.target,
      routing,
      taskId,
      shardId,
      clusterSource: node !== undefined,
      ...(node ? { resolveSource: () => shardMaster(shardId, [source, s.source]) } : {}),
      filter: s.filter,
      ...(s.moves ? { slotMoves: s.moves } : {}),
      markerDb: markerDbFor(spec, s.units),
      start: { replid, offset: startOffset },
      catchUpBound: bound,
      ...(rdb?.loaded ? { heldLink: rdb.loaded.link } : {}),
      ...(rdb && rdb.oversized.length > 0 ? { dirtyKeys: rdb.oversized } : {}),
      syncedDbs: rdb?.loaded?.dbs ?? [...new Set(units.map((u) => u.sourceDb))].sort((a, b) => a - b),
      resyncDb: (sourceDb) =>
        resyncDb({
          sourceDb,
          copy,
          dbMap: s.filter.dbMap,
          keep: s.filter.keep,
          progress: s.progress,
          ...(node
            ? {
                shard: {
                  shardId,
                  node,
                  resolveSource: () => shardMaster(shardId, [source, s.source]),
                  via: [source, s.source],
                },
              }
            : {}),
          log,
        }),
      sourceVersion: copy.info.versionNum,
      targetVersion: copy.targetInfo.versionNum,
      bigKeys: {
        maxPayloadBytes: copy.maxPayloadBytes,
        copyInParts: (sourceDb, targetDb, key) => recopiers.copierFor(sourceDb, targetDb).prepare(key),
        budget: copy.budget,
        ...(copy.logical ? { logical: copy.logical } : {}),
        log,
      },
      ...(spec.incremental.heartbeat.enabled
        ? {
            heartbeat: {
              prefix: spec.incremental.heartbeat.prefix,
              intervalMs: spec.incremental.heartbeat.intervalMs,
              db: lowestSourceDb(spec, s.units),
              ...(tag !== undefined ? { shardTag: tag } : {}),
            },
          }
        : {}),
      until: spec.incremental.until,
      deadline: s.deadline,
      shouldStop: s.shouldStop,
      log,
      onProgress: (p) => s.onProgress(shardId, p),
    });
    s.register(shardId, sync);
    return sync;
  };
  const outcome = await runFollowingTarget(makeSync, copy.routing, s.target, log);
  await store.putShard(
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
}

/**
 * A full-only task with the RDB reader: every shard's snapshot, then no stream (the link is let go).
 * Values too big for one RESTORE are copied in parts afterwards, as the scan reader copies them.
 */
async function rdbFullOnly(
  shards: Versioned<ShardCheckpoint>[],
  o: ReplicateOptions & {
    spec: TaskSpec;
    taskId: string;
    source: RedisEndpoint;
    copy: UnitCopyContext;
    progress: ProgressSink;
  },
): Promise<IncrementalOutcome> {
  const loads = await Promise.all(
    shards.map(async (shard) => {
      const source = sourceAt(o.source, shard.value.node);
      const log = (m: string) =>
        o.progress.log(shard.value.node ? `shard ${shard.value.shardId}: ${m}` : m, { phase: 'full-sync' });
      const load = await loadShardRdb(shard, { ...o, store: o.store, source, log });
      await load.loaded?.link.release();
      const dbMap = numericDbMap(o.spec.dbMap);
      for (const { db, key } of load.oversized) {
        const unit = {
          unitId: `rdb-${shard.value.shardId}-db${db}`,
          sourceDb: db,
          targetDb: targetDbFor(dbMap, db),
        };
        await o.copy.oversizedCopier(unit, o.progress, source).copy(key, 'after');
      }
      return load;
    }),
  );
  await rdbCompleted(o.store, o.spec, o.taskId);
  const first = loads[0]!.shard.value;
  return {
    ended: 'caught-up',
    position: { replid: first.replid, offset: first.startOffset },
    progress: {
      phase: 'incremental',
      opsPerSecond: 0,
      lagMs: undefined,
      p50LagMs: undefined,
      p99LagMs: undefined,
      bytesBehind: undefined,
      appliedOffset: first.startOffset,
      sourceOffset: undefined,
      commandsApplied: 0,
      commandsSkipped: 0,
      keysRecopied: 0,
      dbsResynced: 0,
      reconnects: 0,
    },
  };
}

/** Full Sync Completed of the RDB reader, once every shard's snapshot is loaded. */
async function rdbCompleted(store: TaskStore, spec: TaskSpec, taskId: string): Promise<void> {
  const shards = (await store.listShards(taskId)).map((s) => s.value);
  if (!shards.every((s) => s.rdb === 'loaded')) return;
  await fullSyncCompleted(store, spec, taskId, {
    reader: 'rdb',
    keys: shards.reduce((n, s) => n + (s.rdbKeys ?? 0), 0),
    bytes: shards.reduce((n, s) => n + (s.rdbBytes ?? 0), 0),
  });
}

/** Up to a minute: a cluster promotes a replica within its node timeout (15 s by default). */
const SLOT_MOVE_RETRIES = 60;
const SLOT_MOVE_PAUSE_MS = 1000;

/**
 * Runs a shard's sync, and when a destination cluster node refuses a key it no longer serves (resharding
 * or a failover of the destination), reads the new slot map and runs it again from the markers: slot
 * markers and skip hashes carry their slot's hash tag, so they moved with the slot's keys.
 */
async function runFollowingTarget(
  makeSync: (routing: TargetRouting) => IncrementalSync,
  routing: TargetRouting,
  target: RedisEndpoint,
  log: (m: string) => void,
): Promise<IncrementalOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await makeSync(routing).run();
    } catch (e) {
      if (
        !routing.topology ||
        !isDtsError(e) ||
        !FOLLOWED_TARGET_ERRORS.has(e.code) ||
        attempt >= SLOT_MOVE_RETRIES
      ) {
        throw e;
      }
      log(
        e.code === 'TARGET_SLOTS_MOVED'
          ? `the destination's slots moved (${e.message}); reading its new layout and resuming from the markers`
          : `a destination master failed (${e.message}); waiting for its replica to take over, then resuming from the markers`,
      );
      await new Promise((r) => setTimeout(r, SLOT_MOVE_PAUSE_MS));
      routing = await refreshClusterRouting(target, routing).catch(() => routing);
    }
  }
}

/**
 * A cluster destination's errors that a new slot map cures: slots that moved, and a master that went away
 * (its replica is promoted within the cluster's node timeout). A replica holds a prefix of its master's
 * transactions, so its slot markers and resume position still match its data.
 */
const FOLLOWED_TARGET_ERRORS = new Set([
  'TARGET_SLOTS_MOVED',
  'APPLY_INTERRUPTED',
  'CONNECTION_LOST',
  'UNREACHABLE',
  'TIMEOUT',
  'CLUSTER_DOWN',
  'MARKER_ACCESS_FAILED',
]);

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

import type { Redis } from 'ioredis';
import { loadCatalogue } from '../commands/catalogue.ts';
import type { FilterContext } from '../commands/command-filter.ts';
import { makeKeyFilter, targetDbFor } from '../commands/key-filter.ts';
import { DtsError, isDtsError } from '../errors.ts';
import type { OversizedKeyCopier } from '../fullsync/oversized-key-copier.ts';
import { numericDbMap } from '../fullsync/unit-checkpoint.ts';
import { IncrementalSync } from '../incremental/incremental-sync.ts';
import type { IncrementalOutcome, IncrementalProgress } from '../incremental/incremental-types.ts';
import { combineOutcomes, combineProgress } from '../incremental/shard-progress.ts';
import { type ProgressSink, silentProgress } from '../progress/progress-reporter.ts';
import { connectAdmin } from '../redis/admin-client.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { refreshClusterRouting, type TargetRouting } from '../redis/target-routing.ts';
import type { ShardCheckpoint, TaskStore, UnitCheckpoint, Versioned } from '../state/task-store.ts';
import type { TaskSpec } from '../task/spec.ts';
import { notificationReplicateStep } from './notification-replicate-step.ts';
import type { ReplicateOptions } from './replicate-options.ts';
import { resyncDb } from './resync-db.ts';
import { SampledVerification } from './sampled-verification.ts';
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
  const shards = await o.store.listShards(taskId);
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
  // One shard failing stops the others (cleanly, at their marker) before the error is raised.
  const failed = new AbortController();
  let context: UnitCopyContext | undefined;
  let admin: Redis | undefined;
  let sampled: SampledVerification | undefined;
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
    await o.store.updateTask(taskId, { phase: 'incremental' });
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
    const latest = new Map<string, IncrementalProgress>();
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
      shouldStop: () => stop.stopRequested || o.signal?.aborted === true || failed.signal.aborted,
      onProgress: (shardId, p) => {
        latest.set(shardId, p);
        if (latest.size < shards.length) return;
        const all = combineProgress([...latest.values()]);
        o.onProgress?.(all);
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
    );
    const failure = results.find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
    return combineOutcomes(results.map((r) => (r as PromiseFulfilledResult<IncrementalOutcome>).value));
  } finally {
    await sampled?.stop();
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
  shouldStop: () => boolean;
  onProgress: (shardId: string, p: IncrementalProgress) => void;
}

/** One source shard's stream, from its captured offset and its units' largest stamp, or from its marker. */
async function replicateShard(
  shard: Versioned<ShardCheckpoint>,
  s: ShardRunShared,
  store: TaskStore,
): Promise<IncrementalOutcome> {
  const { spec, taskId } = s.input;
  const { shardId, replid, startOffset, node, tag } = shard.value;
  const units = s.units.filter((u) => (u.shardId ?? STANDALONE_SHARD_ID) === shardId);
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
  const log = (m: string) =>
    s.progress.log(node ? `shard ${shardId}: ${m}` : m, { phase: 'incremental', shard: shardId });
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
  const makeSync = (routing: TargetRouting) =>
    new IncrementalSync({
      source,
      target: s.target,
      routing,
      taskId,
      shardId,
      clusterSource: node !== undefined,
      ...(node ? { resolveSource: () => shardMaster(shardId, [source, s.source]) } : {}),
      filter: s.filter,
      markerDb: markerDbFor(spec, s.units),
      start: { replid, offset: startOffset },
      catchUpBound: bound,
      syncedDbs: [...new Set(units.map((u) => u.sourceDb))].sort((a, b) => a - b),
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
      bigKeys: {
        maxPayloadBytes: copy.maxPayloadBytes,
        copyInParts: (sourceDb, targetDb, key) => recopiers.copierFor(sourceDb, targetDb).prepare(key),
        budget: copy.budget,
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
  const outcome = await runFollowingTarget(makeSync, copy.routing, s.target, log).catch((e: unknown) => {
    throw isDtsError(e) && e.code === 'BACKLOG_LOST' && spec.incremental.onBacklogLost === 'resync'
      ? new DtsError(
          e.code,
          `${e.message} (incremental.onBacklogLost "resync" is not built yet, so the task fails)`,
          e.fix,
        )
      : e;
  });
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

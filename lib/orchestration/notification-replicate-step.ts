import { makeKeyFilter, targetDbFor } from '../commands/key-filter.ts';
import { DtsError } from '../errors.ts';
import type { FullSyncUnit } from '../fullsync/copy-unit.ts';
import type { OversizedKeyCopier } from '../fullsync/oversized-key-copier.ts';
import { numericDbMap } from '../fullsync/unit-checkpoint.ts';
import type { IncrementalOutcome } from '../incremental/incremental-types.ts';
import { KeyRecopier } from '../incremental/key-recopier.ts';
import type { KeyspaceWatch, ShardWatch } from '../notifications/keyspace-watch.ts';
import { type NotificationProgress, NotificationSync } from '../notifications/notification-sync.ts';
import { RecopyWriter } from '../notifications/recopy-writer.ts';
import { repairRound } from '../notifications/repair-round.ts';
import { silentProgress } from '../progress/progress-reporter.ts';
import type { NotificationStatus } from '../state/task-store.ts';
import { RateLimiter } from '../util/rate-limiter.ts';
import { planVerifyUnits } from '../verify/verify-units.ts';
import { CaughtUpSignal } from './caught-up-signal.ts';
import { CUT_OVER_QUIET_MS, CutOverWatch } from './cut-over-watch.ts';
import { startKeyspaceWatch } from './keyspace-watch-start.ts';
import type { ReplicateOptions } from './replicate-options.ts';
import { stepEndpoints } from './step-endpoints.ts';
import type { TaskStepInput } from './step-types.ts';
import { StopFlag } from './stop-flag.ts';
import { UnitCopyContext } from './unit-copy-context.ts';

const PROGRESS_LOG_MS = 2000;
const STATUS_WRITE_MS = 5000;

/**
 * The Incremental state with incremental.reader "notifications": the keyspace watch (held since
 * CaptureStart when this process ran it, else opened now and followed by a repair round), drained by
 * NotificationSync into the destination, its gaps and repairs written to the task's status.
 */
export async function notificationReplicateStep(
  input: TaskStepInput,
  o: ReplicateOptions,
): Promise<IncrementalOutcome> {
  const { spec, taskId } = input;
  if (o.deadline !== undefined) {
    throw new DtsError(
      'READER_NEEDS_ONE_PROCESS',
      'incremental.reader "notifications" cannot run in Lambda windows: the subscription would end with ' +
        'each window and the events between windows would be lost',
      'use incremental.mode fargate (the default) with the notification reader',
    );
  }
  const { source, target } = stepEndpoints(spec, o.secrets);
  const progress = o.progress ?? silentProgress;
  const log = (m: string) => progress.log(m, { phase: 'incremental', reader: 'notifications' });
  const units = (await o.store.listCheckpoints(taskId)).map((c) => c.value);
  const shards = await o.store.listShards(taskId);
  const stop = new StopFlag(o.store, taskId);
  let cutOver: CutOverWatch | undefined;
  let watch: KeyspaceWatch | undefined = o.watch;
  let context: UnitCopyContext | undefined;
  const recopiers = new Map<string, KeyRecopier>();
  let writer: RecopyWriter | undefined;
  try {
    context = await UnitCopyContext.open({ source, target, spec, taskId });
    const dbMap = numericDbMap(spec.dbMap);
    const repairUnits = unitsToRepair(spec, units, context, dbMap);
    const held = watch !== undefined;
    watch ??= await startKeyspaceWatch({
      spec,
      taskId,
      source,
      ...(repairUnits.length > 0 ? { heartbeatDb: repairUnits[0]!.sourceDb } : {}),
      log,
    });
    watch.log = log;
    watch.selectDbs(repairUnits.map((u) => u.sourceDb));
    if (!held) {
      watch.requestRepair(
        'the subscription started after the full sync (a Fargate replicator, a restart, or syncType ' +
          'incremental): changes made before it are found by comparing',
      );
    }
    const status: NotificationStatus = {
      subscribedAt: watch.startedAt,
      subscription: watch.coversFullSync
        ? 'held since before the full sync'
        : 'fresh: a repair round covers what came before',
      gaps: 0,
      recentGaps: [],
      repairRounds: 0,
      keysRecopied: 0,
      dirtyKeys: 0,
      updatedAt: new Date().toISOString(),
    };
    await o.store.updateTask(taskId, { phase: 'incremental', notifications: status });
    log(
      `incremental sync from keyspace notifications (${status.subscription}); eventually equal, exact ` +
        'at cut-over after the repair round',
    );
    const ctx = context;
    const w = watch;
    writer = new RecopyWriter(ctx.routing);
    // One copier in parts per shard and db, closed with the context (as replicate-step keeps them).
    const copiers = new Map<string, OversizedKeyCopier>();
    const recopierOf = (shard: ShardWatch) => {
      let r = recopiers.get(shard.shard.shardId);
      if (!r) {
        const from = shard.endpoint;
        r = new KeyRecopier({
          source: from,
          sourceVersion: ctx.info.versionNum,
          dbMap,
          maxPayloadBytes: ctx.maxPayloadBytes,
          // Built in parts at an exact stamp; the re-copy's writes then rename it over the key.
          copyInParts: (sourceDb, targetDb, key) => {
            const id = `${shard.shard.shardId}:${sourceDb}`;
            let copier = copiers.get(id);
            if (!copier) {
              copier = ctx.oversizedCopier(
                { unitId: `recopy-${shard.shard.shardId}-db${sourceDb}`, sourceDb, targetDb },
                progress,
                from,
              );
              copiers.set(id, copier);
            }
            return copier.prepare(key);
          },
          budget: ctx.budget,
          ...(ctx.logical ? { logical: ctx.logical } : {}),
          log,
          markerDb: 0,
          clusterSource: shard.shard.tag !== undefined,
        });
        recopiers.set(shard.shard.shardId, r);
      }
      return r;
    };
    let lastLog = 0;
    let lastWrite = 0;
    let writing: Promise<unknown> = Promise.resolve();
    const keep = makeKeyFilter({
      ...spec.keyFilter,
      exclude: [...(spec.keyFilter?.exclude ?? []), spec.incremental.heartbeat.prefix],
    });
    const caughtUp = new CaughtUpSignal(spec, taskId);
    const sync = new NotificationSync({
      watch: w,
      recopierOf,
      writer,
      repair: (signal) =>
        repairRound({
          source,
          target,
          units: repairUnits,
          keep,
          ttlToleranceMs: spec.verify.ttlToleranceMs,
          watch: w,
          signal,
        }),
      until: spec.incremental.until,
      shouldStop: () => stop.stopRequested || o.signal?.aborted === true,
      cutOverAccepted: () => cutOver?.accepted === true,
      limiter: new RateLimiter({
        keysPerSecond: spec.throttle?.maxKeysPerSecond,
        bytesPerSecond: spec.throttle?.maxBytesPerSecond,
      }),
      log,
      onProgress: (p) => {
        o.onProgress?.(p);
        caughtUp.onProgress(p);
        const now = Date.now();
        if (now - lastLog >= PROGRESS_LOG_MS) {
          lastLog = now;
          progress.log(progressLine(p), { ...p, recentGaps: undefined });
        }
        if (
          p.gaps !== status.gaps ||
          p.repairRounds !== status.repairRounds ||
          now - lastWrite >= STATUS_WRITE_MS
        ) {
          lastWrite = now;
          Object.assign(status, statusOf(p));
          const snapshot = { ...status };
          writing = writing.then(() =>
            o.store.updateTask(taskId, { notifications: snapshot }).catch(() => undefined),
          );
        }
      },
    });
    cutOver = new CutOverWatch({
      store: o.store,
      taskId,
      spec,
      log,
      drained: () => sync.isQuiet(CUT_OVER_QUIET_MS),
      writesSeenOn: "the source's keyspace notifications",
    });
    const outcome = await sync.run();
    await writing;
    await o.store.updateTask(taskId, {
      notifications: { ...status, ...statusOf(outcome.progress as NotificationProgress) },
    });
    for (const shard of shards) {
      await o.store.putShard(
        taskId,
        {
          ...shard.value,
          phase: outcome.ended,
          keysRecopied: outcome.progress.keysRecopied,
          updatedAt: new Date().toISOString(),
        },
        shard.version,
      );
    }
    return outcome;
  } finally {
    cutOver?.close();
    stop.close();
    await Promise.all([...recopiers.values()].map((r) => r.close().catch(() => undefined)));
    await writer?.close();
    await watch?.close();
    await context?.close();
  }
}

/** The dbs the task copies, as units: those the full sync planned, or (syncType incremental) as verify plans them. */
function unitsToRepair(
  spec: TaskStepInput['spec'],
  units: readonly { sourceDb: number; targetDb: number }[],
  context: UnitCopyContext,
  dbMap: Readonly<Record<number, number>> | undefined,
): FullSyncUnit[] {
  const dbs =
    units.length > 0
      ? [...new Set(units.map((u) => u.sourceDb))]
      : planVerifyUnits({
          sourceKeyspace: context.info.keyspace,
          targetKeyspace: {},
          dbs: spec.dbs,
          dbMap,
        }).map((u) => u.sourceDb);
  return dbs
    .sort((a, b) => a - b)
    .map((db) => ({ unitId: `repair-db${db}`, sourceDb: db, targetDb: targetDbFor(dbMap, db) }));
}

function statusOf(p: NotificationProgress): Partial<NotificationStatus> {
  return {
    gaps: p.gaps,
    recentGaps: [...p.recentGaps],
    repairRounds: p.repairRounds,
    ...(p.lastRepair
      ? {
          lastRepair: {
            at: p.lastRepair.at,
            keysCompared: p.lastRepair.keysCompared,
            keysDiffering: p.lastRepair.keysDiffering,
            seconds: p.lastRepair.seconds,
          },
        }
      : {}),
    keysRecopied: p.keysRecopied,
    dirtyKeys: p.dirtyKeys,
    updatedAt: new Date().toISOString(),
  };
}

function progressLine(p: NotificationProgress): string {
  const lag = p.p99LagMs === undefined ? 'n/a' : `p50 ${p.p50LagMs} / p99 ${p.p99LagMs} ms`;
  return (
    `notifications: ${Math.round(p.opsPerSecond)} keys/s re-copied, lag ${lag}, ${p.dirtyKeys} waiting, ` +
    `${p.keysRecopied} re-copied, ${p.gaps} gap(s), ${p.repairRounds} repair round(s)${p.repairing ? ' (repairing)' : ''}`
  );
}

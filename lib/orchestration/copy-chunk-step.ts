import type { Redis } from 'ioredis';
import { makeKeyFilter } from '../commands/key-filter.ts';
import { DtsError } from '../errors.ts';
import { CheckpointWriter } from '../fullsync/checkpoint-writer.ts';
import { copyUnit } from '../fullsync/copy-unit.ts';
import { keyErrorsError } from '../fullsync/key-errors.ts';
import { OversizedKeyCopier, protoMaxBulkLen } from '../fullsync/oversized-key-copier.ts';
import { unitCheckpoint } from '../fullsync/unit-checkpoint.ts';
import { type ProgressSink, silentProgress } from '../progress/progress-reporter.ts';
import { connectAdmin, serverInfo } from '../redis/admin-client.ts';
import type { TaskStore } from '../state/task-store.ts';
import { RateLimiter } from '../util/rate-limiter.ts';
import { type SecretValues, stepEndpoints } from './step-endpoints.ts';
import type { CopyChunkInput, CopyChunkResult } from './step-types.ts';

const RESTORE_OVERHEAD = 1024;
const STOP_POLL_MS = 2000;

/** Raised when `redis-dts stop` set the task's flag: the machine records the task as stopped. */
export const STOPPED_CODE = 'TASK_STOPPED';

/**
 * The CopyChunk state: continues one unit from its stored checkpoint until the unit is done or the
 * deadline (the Lambda's remaining time less a margin) passes, checkpointing as it goes. A crash
 * loses at most the chunks since the last checkpoint write, which the next invocation copies again.
 */
export async function copyChunkStep(
  input: CopyChunkInput,
  o: { store: TaskStore; deadline: number; secrets?: SecretValues; progress?: ProgressSink },
): Promise<CopyChunkResult> {
  const { spec, taskId, unit } = input;
  const iteration = (input.progress?.iteration ?? 0) + 1;
  if (await o.store.isStopRequested(taskId)) throw stopped(taskId);
  const saved = await o.store.getCheckpoint(taskId, unit.unitId);
  if (!saved) {
    throw new DtsError(
      'CHECKPOINT_MISSING',
      `unit ${unit.unitId} of task '${taskId}' has no checkpoint (PlanUnits stores one for every unit)`,
      'start the task again: PlanUnits will plan the unit',
    );
  }
  if (saved.value.done) return { done: true, iteration, keysWritten: saved.value.keysWritten };

  const { source, target } = stepEndpoints(spec, o.secrets);
  const admins: Redis[] = [];
  const writer = new CheckpointWriter(o.store, taskId, new Map([[unit.unitId, saved.version]]), {
    minIntervalMs: spec.fullSync.checkpointIntervalMs,
  });
  // `redis-dts stop` sets a flag in the table: polled off the data path, checked between chunks.
  let stopRequested = false;
  const poll = setInterval(() => {
    o.store.isStopRequested(taskId).then(
      (r) => {
        stopRequested ||= r;
      },
      () => undefined, // a missed poll is retried at the next tick
    );
  }, STOP_POLL_MS);
  poll.unref();
  let oversized: OversizedKeyCopier | undefined;
  try {
    const src = await connectAdmin(source);
    admins.push(src);
    const tgt = await connectAdmin(target);
    admins.push(tgt);
    const info = await serverInfo(src);
    const maxBulk = await protoMaxBulkLen(tgt);
    const progress = o.progress ?? silentProgress;
    oversized = new OversizedKeyCopier({
      source,
      target,
      unit,
      taskId,
      protoMaxBulkLen: maxBulk,
      onKey: (key) => progress.log(`copying big key ${key} in parts`, { unit: unit.unitId }),
    });
    progress.log(`copying ${unit.unitId}: source db ${unit.sourceDb} → target db ${unit.targetDb}`, {
      unit: unit.unitId,
      resumeCursor: saved.value.cursor,
    });
    const keysTotal = info.keyspace[unit.sourceDb]?.keys;
    const copier = oversized;
    const outcome = await copyUnit({
      source,
      target,
      unit,
      from: saved.value,
      keep: makeKeyFilter(spec.keyFilter),
      sourceVersion: info.versionNum,
      dbHasExpiringKeys: (info.keyspace[unit.sourceDb]?.expires ?? 0) > 0,
      maxPayloadBytes: maxBulk - RESTORE_OVERHEAD,
      copyOversizedKey: (key, expireAt) => copier.copy(key, expireAt),
      limiter: new RateLimiter({
        keysPerSecond: spec.throttle?.maxKeysPerSecond,
        bytesPerSecond: spec.throttle?.maxBytesPerSecond,
      }),
      scanCount: spec.fullSync.chunkKeys,
      maxInFlightBytes: spec.fullSync.maxInFlightBytes,
      deadline: o.deadline,
      shouldStop: () => stopRequested,
      onChunkApplied: (p) => {
        writer.update(unitCheckpoint(unit, p));
        progress.update({
          phase: 'full sync',
          unit: unit.unitId,
          keysDone: p.keysRead + p.keysFiltered,
          keysTotal,
          bytesDone: p.bytes,
        });
      },
    });
    await writer.flush();
    if (outcome.interrupted === 'stop') throw stopped(taskId);
    // Refused keys are counted in the checkpoint; the step fails once its chunks are stored, naming them.
    if (outcome.errors.length > 0) {
      throw keyErrorsError(outcome.progress.keysFailed - saved.value.keysFailed, outcome.errors);
    }
    return { done: outcome.progress.done, iteration, keysWritten: outcome.progress.keysWritten };
  } finally {
    clearInterval(poll);
    await oversized?.close();
    await writer.flush().catch(() => undefined);
    await Promise.all(admins.map((a) => a.quit().catch(() => a.disconnect())));
  }
}

function stopped(taskId: string): DtsError {
  return new DtsError(STOPPED_CODE, `task '${taskId}' was stopped on request`, 'start it again to resume');
}

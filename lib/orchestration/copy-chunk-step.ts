import { DtsError } from '../errors.ts';
import { CheckpointWriter } from '../fullsync/checkpoint-writer.ts';
import { copyUnit } from '../fullsync/copy-unit.ts';
import { keyErrorsError, withAssumedBulkLimit } from '../fullsync/key-errors.ts';
import { unitCheckpoint } from '../fullsync/unit-checkpoint.ts';
import { type ProgressSink, silentProgress } from '../progress/progress-reporter.ts';
import type { TaskStore } from '../state/task-store.ts';
import { sourceAt } from './source-shards.ts';
import { type SecretValues, stepEndpoints } from './step-endpoints.ts';
import type { CopyChunkInput, CopyChunkResult } from './step-types.ts';
import { StopFlag } from './stop-flag.ts';
import { UnitCopyContext } from './unit-copy-context.ts';

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
  if (saved.value.done)
    return { done: true, iteration, keysWritten: saved.value.keysWritten, keysThisRun: 0 };

  const { source, target } = stepEndpoints(spec, o.secrets);
  const writer = new CheckpointWriter(o.store, taskId, new Map([[unit.unitId, saved.version]]), {
    minIntervalMs: spec.fullSync.checkpointIntervalMs,
  });
  const stop = new StopFlag(o.store, taskId);
  let context: UnitCopyContext | undefined;
  try {
    context = await UnitCopyContext.open({ source: sourceAt(source, unit.sourceNode), target, spec, taskId });
    const progress = o.progress ?? silentProgress;
    progress.log(`copying ${unit.unitId}: source db ${unit.sourceDb} → target db ${unit.targetDb}`, {
      unit: unit.unitId,
      resumeCursor: saved.value.cursor,
    });
    const keysTotal = context.info.keyspace[unit.sourceDb]?.keys;
    const outcome = await copyUnit({
      ...context.copyOptions(unit, progress),
      from: saved.value,
      deadline: o.deadline,
      shouldStop: () => stop.stopRequested,
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
    return {
      done: outcome.progress.done,
      iteration,
      keysWritten: outcome.progress.keysWritten,
      keysThisRun: outcome.progress.keysWritten - saved.value.keysWritten,
    };
  } catch (e) {
    throw withAssumedBulkLimit(e, context?.maxBulkAssumed ? context.maxBulk : undefined);
  } finally {
    stop.close();
    await writer.flush().catch(() => undefined);
    await context?.close();
  }
}

function stopped(taskId: string): DtsError {
  return new DtsError(STOPPED_CODE, `task '${taskId}' was stopped on request`, 'start it again to resume');
}

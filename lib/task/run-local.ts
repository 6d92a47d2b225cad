import { DtsError, isDtsError } from '../errors.ts';
import { STOPPED_CODE } from '../orchestration/copy-chunk-step.ts';
import type { LocalHandlerOptions } from '../orchestration/local-handlers.ts';
import { describeCaught } from '../orchestration/record-failure-step.ts';
import { runTaskMachine } from '../orchestration/run-task-machine.ts';
import { loadTaskDefinition } from '../orchestration/task-definition.ts';
import type { PrecheckReport } from '../precheck/types.ts';
import { assertPrecheckAllows } from '../precheck/verdict.ts';
import { type ProgressSink, silentProgress } from '../progress/progress-reporter.ts';
import { openLocalStore } from '../state/dynamo-client.ts';
import type { ShardCheckpoint, TaskStore, UnitCheckpoint } from '../state/task-store.ts';
import type { VerifyReport } from '../verify/verify-types.ts';
import { resolveEndpoint } from './resolve-endpoint.ts';
import { defaultTaskId, type TaskSpec } from './spec.ts';

export interface RunLocalOptions {
  /** On-disk state (embedded DynamoDB); undefined keeps it in memory (no resume). */
  stateDir?: string;
  progress?: ProgressSink;
  /** Aborting asks the task to stop, as `redis-dts stop` does: chunks in flight finish and are checkpointed. */
  signal?: AbortSignal;
  /** Called with the precheck report before anything is copied (the CLI prints it). */
  onPrecheck?: (report: PrecheckReport) => void;
  /** Called with the verification report after a completed copy (the CLI prints its summary). */
  onVerify?: (report: VerifyReport) => void;
}

export interface LocalRunSummary {
  taskId: string;
  units: UnitCheckpoint[];
  /** The shards whose full sync came from their RDB (fullSync.reader rdb). */
  rdbLoads: ShardCheckpoint[];
  keysWritten: number;
  bytes: number;
  /** This run's wall time (a resumed run counts only itself). */
  seconds: number;
  /** Keys and bytes read by this run (a resumed run does not count what earlier runs read). */
  keysThisRun: number;
  bytesThisRun: number;
  stopped: boolean;
  /** How the incremental phase ended (full+incremental and incremental tasks). */
  /** The first shard's checkpoint with every shard's counters added up. */
  incremental?: ShardCheckpoint & { shards: number };
}

/**
 * Runs a task on this machine exactly as AWS runs it: the state machine definition generated from the
 * CDK stack, executed by aws-local-stepfunctions with every Task state an in-process step, and the
 * task store in an embedded DynamoDB. A failed execution comes back as the DtsError its step raised.
 */
export async function runTaskLocally(spec: TaskSpec, o: RunLocalOptions = {}): Promise<LocalRunSummary> {
  // Fail on a bad URL or a missing password variable before anything starts.
  resolveEndpoint(spec.source, 'source');
  resolveEndpoint(spec.target, 'target');
  const taskId = spec.taskId ?? defaultTaskId(spec);
  const progress = o.progress ?? silentProgress;
  const local = await openLocalStore(o.stateDir !== undefined ? { stateDir: o.stateDir, taskId } : {});
  const stop = () => void local.store.requestStop(taskId).catch(() => undefined);
  o.signal?.addEventListener('abort', stop, { once: true });
  try {
    const before = totals(await checkpoints(local.store, taskId), await rdbLoads(local.store, taskId));
    const started = performance.now();
    let precheck: PrecheckReport | undefined;
    const handlers: Pick<LocalHandlerOptions, 'progress' | 'onPrecheck' | 'onVerify'> = {
      progress,
      onPrecheck: (r) => {
        precheck = { status: r.status, items: r.items };
        o.onPrecheck?.(precheck);
      },
      onVerify: o.onVerify,
    };
    let stopped = false;
    try {
      await runTaskMachine(
        loadTaskDefinition(),
        { spec: { ...spec, taskId } },
        { store: local.store, signal: o.signal, ...handlers },
      );
    } catch (e) {
      const failure = executionFailure(e);
      if (failure.code === 'PrecheckFailed' && precheck)
        assertPrecheckAllows(precheck, spec.acknowledgeWarnings);
      if (failure.code !== STOPPED_CODE) throw new DtsError(failure.code, failure.message, failure.fix);
      stopped = true;
    } finally {
      progress.finish();
    }
    const units = await checkpoints(local.store, taskId);
    const loads = await rdbLoads(local.store, taskId);
    const after = totals(units, loads);
    return {
      taskId,
      units,
      rdbLoads: loads,
      keysWritten:
        units.reduce((n, u) => n + u.keysWritten, 0) + loads.reduce((n, s) => n + (s.rdbKeys ?? 0), 0),
      bytes: after.bytes,
      seconds: (performance.now() - started) / 1000,
      keysThisRun: after.keys - before.keys,
      bytesThisRun: after.bytes - before.bytes,
      stopped,
      incremental: spec.syncType === 'full' ? undefined : await shardsSummary(local.store, taskId),
    };
  } finally {
    o.signal?.removeEventListener('abort', stop);
    await local.close();
  }
}

/** The shards' incremental figures added up (a cluster source has one shard per master). */
async function shardsSummary(
  store: TaskStore,
  taskId: string,
): Promise<(ShardCheckpoint & { shards: number }) | undefined> {
  const shards = (await store.listShards(taskId)).map((s) => s.value);
  if (shards.length === 0) return undefined;
  return {
    ...shards[0]!,
    commandsApplied: shards.reduce((n, s) => n + (s.commandsApplied ?? 0), 0),
    keysRecopied: shards.reduce((n, s) => n + (s.keysRecopied ?? 0), 0),
    shards: shards.length,
  };
}

async function checkpoints(store: TaskStore, taskId: string): Promise<UnitCheckpoint[]> {
  return (await store.listCheckpoints(taskId)).map((c) => c.value);
}

/** Shards whose full sync was an RDB load (fullSync.reader rdb). */
async function rdbLoads(store: TaskStore, taskId: string): Promise<ShardCheckpoint[]> {
  return (await store.listShards(taskId)).map((s) => s.value).filter((s) => s.rdb === 'loaded');
}

function totals(units: UnitCheckpoint[], loads: ShardCheckpoint[]): { keys: number; bytes: number } {
  return {
    keys:
      units.reduce((n, u) => n + u.keysRead + u.keysFiltered, 0) +
      loads.reduce((n, s) => n + (s.rdbKeys ?? 0), 0),
    bytes: units.reduce((n, u) => n + u.bytes, 0) + loads.reduce((n, s) => n + (s.rdbBytes ?? 0), 0),
  };
}

/** The step error that ended an execution (aws-local-stepfunctions' ExecutionError carries it as `cause`). */
function executionFailure(e: unknown): { code: string; message: string; fix: string } {
  if (isDtsError(e)) return { code: e.code, message: e.message, fix: e.fix };
  const cause = (e as { cause?: { name?: string; message?: string } })?.cause;
  if (!cause?.name) throw e;
  return describeCaught({ Error: cause.name, Cause: cause.message ?? '' });
}

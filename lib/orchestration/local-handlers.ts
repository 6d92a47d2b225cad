import type { DtsError } from '../errors.ts';
import type { HeldWatches } from '../notifications/held-watches.ts';
import type { ProgressSink } from '../progress/progress-reporter.ts';
import type { TaskStore } from '../state/task-store.ts';
import type { VerifyReport } from '../verify/verify-types.ts';
import { captureStartStep } from './capture-start-step.ts';
import { cleanupStep } from './cleanup-step.ts';
import { copyChunkStep } from './copy-chunk-step.ts';
import { holdKeyspaceWatch } from './keyspace-watch-start.ts';
import { planUnitsStep } from './plan-units-step.ts';
import { type PrecheckStepResult, precheckStep } from './precheck-step.ts';
import { recordFailureStep } from './record-failure-step.ts';
import { replicateStep } from './replicate-step.ts';
import { isPermanentFailure } from './replicator-verdict.ts';
import { asStepError } from './step-error.ts';
import {
  type CaughtError,
  type ContinueInput,
  type CopyChunkInput,
  REPLICATOR_TASK_ENV,
  type TaskStepInput,
} from './step-types.ts';
import { validateStep } from './validate-step.ts';
import { verifyStep } from './verify-step.ts';

export interface LocalHandlerOptions {
  store: TaskStore;
  /** How long one IncrementalWindow invocation replicates (lambda mode). Default 10 minutes. */
  windowMs?: number;
  /** How long one CopyChunk invocation may copy (a Lambda's remaining time on AWS). Default 10 minutes. */
  copyChunkMs?: (input: CopyChunkInput) => number;
  /** The machine's ContinueFullSync/ContinueIncremental states: start the next execution with this input. */
  onContinue: (input: { resume: ContinueInput }) => void | Promise<void>;
  /**
   * The replicator failed in a way a retry cannot fix (a lost backlog, a command it cannot replay, a
   * destination that refused a batch). On AWS the RunReplicator state retries any failed container (it
   * cannot tell a crash from a verdict), and each retry fails fast; locally the runner ends the execution
   * at once instead of waiting out the retry intervals.
   */
  onPermanentFailure?: (e: DtsError) => void;
  /**
   * Aborted by the CLI's Ctrl-C / SIGTERM: the replicator stops at once, in-process, besides the stop
   * flag the runner also sets (which the full sync's chunks read).
   */
  signal?: AbortSignal;
  /** Progress of CopyChunk and Verify (the CLI's bar or JSON lines). */
  progress?: ProgressSink;
  /** Told the precheck verdict as soon as it is known (the CLI prints the report). */
  onPrecheck?: (result: PrecheckStepResult) => void;
  /** Told the verification report (the CLI prints its summary). */
  onVerify?: (report: VerifyReport) => void;
  /**
   * reader notifications: where CaptureStart leaves the keyspace subscription it opens before the full
   * sync, for the Incremental state to take over (one per run, shared by its continued executions).
   */
  watches?: HeldWatches;
}

type Handler = (input: never) => Promise<unknown>;

/**
 * The Task states of the task state machine (infra/task-definition.ts), by state name, as in-process
 * functions: what `aws-local-stepfunctions` runs in place of each Lambda (its
 * `overrides.taskResourceLocalHandlers`). Errors leave as on AWS (asStepError).
 */
export function localTaskHandlers(o: LocalHandlerOptions): Record<string, Handler> {
  const store = o.store;
  // The replicator state carries only the task id (on AWS the container reads the spec from the table and
  // passwords from its secrets); in-process, the spec Validate parsed is at hand, passwords included.
  const specs = new Map<string, TaskStepInput['spec']>();
  const replicate = async (taskId: string, deadline?: number) => {
    const spec = specs.get(taskId);
    if (!spec) throw new Error(`no spec for task '${taskId}' in this process`);
    try {
      const watch = o.watches?.take(taskId);
      return await replicateStep(
        { taskId, spec },
        { store, progress: o.progress, deadline, signal: o.signal, ...(watch ? { watch } : {}) },
      );
    } catch (e) {
      if (isPermanentFailure(e)) o.onPermanentFailure?.(e);
      throw e;
    }
  };
  const handlers: Record<string, Handler> = {
    Validate: async (e: { input: unknown }) => {
      const task = await validateStep(e.input, { store, mode: 'local' });
      if (!('refused' in task)) specs.set(task.taskId, task.spec);
      return task;
    },
    Precheck: async (e: TaskStepInput) => {
      const result = await precheckStep(e, { store });
      o.onPrecheck?.(result);
      return result;
    },
    CaptureStart: async (e: TaskStepInput) => {
      const result = await captureStartStep(e, { store });
      if (o.watches && e.spec.incremental.reader === 'notifications' && e.spec.syncType !== 'full') {
        await o.watches.hold(e.taskId, await holdKeyspaceWatch(e, result.via, o.progress));
      }
      return result;
    },
    PlanUnits: (e: TaskStepInput) => planUnitsStep(e, { store }),
    CheckFullSync: (e: TaskStepInput) => planUnitsStep(e, { store }),
    CopyChunk: (e: CopyChunkInput) =>
      copyChunkStep(e, {
        store,
        deadline: Date.now() + (o.copyChunkMs?.(e) ?? 10 * 60_000),
        progress: o.progress,
      }),
    IncrementalWindow: async (e: TaskStepInput & { window?: { iteration?: number } }) => {
      const outcome = await replicate(e.taskId, Date.now() + (o.windowMs ?? 10 * 60_000));
      return { iteration: (e.window?.iteration ?? 0) + 1, stopped: outcome.ended !== 'deadline' };
    },
    RunReplicator: async (e: ReplicatorParameters) => {
      await replicate(replicatorTaskId(e));
      return {};
    },
    Verify: (e: TaskStepInput) => verifyStep(e, { store, progress: o.progress, onReport: o.onVerify }),
    Cleanup: (e: TaskStepInput) => cleanupStep(e, { store }),
    RecordFailure: (e: { taskId?: string; error?: CaughtError }) => recordFailureStep(e, { store }),
    ContinueFullSync: async (e: { Input: { resume: ContinueInput } }) =>
      o.onContinue({ resume: e.Input.resume }),
    ContinueIncremental: async (e: { Input: { resume: ContinueInput } }) =>
      o.onContinue({ resume: e.Input.resume }),
  };
  return Object.fromEntries(
    Object.entries(handlers).map(([name, fn]) => [
      name,
      async (input: never) => {
        try {
          return (await fn(input)) ?? {};
        } catch (e) {
          throw asStepError(e);
        }
      },
    ]),
  );
}

/** The part of the RunReplicator state's ECS parameters the local runner reads. */
interface ReplicatorParameters {
  Overrides?: { ContainerOverrides?: { Environment?: { Name: string; Value: string }[] }[] };
}

function replicatorTaskId(e: ReplicatorParameters): string {
  for (const c of e.Overrides?.ContainerOverrides ?? []) {
    const v = c.Environment?.find((x) => x.Name === REPLICATOR_TASK_ENV)?.Value;
    if (v) return v;
  }
  throw new Error(`RunReplicator got no ${REPLICATOR_TASK_ENV} in its container overrides`);
}

/**
 * A Context Object for a local execution: the continuation states read `$$.Execution.Id` (the parent
 * of the next execution), which aws-local-stepfunctions does not fill in by itself.
 */
export function localExecutionContext(input: unknown, executionName: string): Record<string, unknown> {
  const machine = 'arn:aws:states:local:000000000000:stateMachine:redis-dts-local';
  return {
    Execution: {
      Id: `arn:aws:states:local:000000000000:execution:redis-dts-local:${executionName}`,
      Name: executionName,
      Input: input,
      StartTime: new Date().toISOString(),
    },
    StateMachine: { Id: machine, Name: 'redis-dts-local' },
  };
}

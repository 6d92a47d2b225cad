import type { ProgressSink } from '../progress/progress-reporter.ts';
import type { TaskStore } from '../state/task-store.ts';
import type { VerifyReport } from '../verify/verify-types.ts';
import { captureStartStep } from './capture-start-step.ts';
import { cleanupStep } from './cleanup-step.ts';
import { copyChunkStep } from './copy-chunk-step.ts';
import { notBuilt } from './not-built.ts';
import { planUnitsStep } from './plan-units-step.ts';
import { type PrecheckStepResult, precheckStep } from './precheck-step.ts';
import { recordFailureStep } from './record-failure-step.ts';
import { asStepError } from './step-error.ts';
import type { CaughtError, ContinueInput, CopyChunkInput, TaskStepInput } from './step-types.ts';
import { validateStep } from './validate-step.ts';
import { verifyStep } from './verify-step.ts';

export interface LocalHandlerOptions {
  store: TaskStore;
  /** How long one CopyChunk invocation may copy (a Lambda's remaining time on AWS). Default 10 minutes. */
  copyChunkMs?: (input: CopyChunkInput) => number;
  /** The machine's ContinueFullSync/ContinueIncremental states: start the next execution with this input. */
  onContinue: (input: { resume: ContinueInput }) => void | Promise<void>;
  /** Progress of CopyChunk and Verify (the CLI's bar or JSON lines). */
  progress?: ProgressSink;
  /** Told the precheck verdict as soon as it is known (the CLI prints the report). */
  onPrecheck?: (result: PrecheckStepResult) => void;
  /** Told the verification report (the CLI prints its summary). */
  onVerify?: (report: VerifyReport) => void;
}

type Handler = (input: never) => Promise<unknown>;

/**
 * The Task states of the task state machine (infra/task-definition.ts), by state name, as in-process
 * functions: what `aws-local-stepfunctions` runs in place of each Lambda (its
 * `overrides.taskResourceLocalHandlers`). Errors leave as on AWS (asStepError).
 */
export function localTaskHandlers(o: LocalHandlerOptions): Record<string, Handler> {
  const store = o.store;
  const handlers: Record<string, Handler> = {
    Validate: (e: { input: unknown }) => validateStep(e.input, { store, mode: 'local' }),
    Precheck: async (e: TaskStepInput) => {
      const result = await precheckStep(e, { store });
      o.onPrecheck?.(result);
      return result;
    },
    CaptureStart: (e: TaskStepInput) => captureStartStep(e, { store }),
    PlanUnits: (e: TaskStepInput) => planUnitsStep(e, { store }),
    CheckFullSync: (e: TaskStepInput) => planUnitsStep(e, { store }),
    CopyChunk: (e: CopyChunkInput) =>
      copyChunkStep(e, {
        store,
        deadline: Date.now() + (o.copyChunkMs?.(e) ?? 10 * 60_000),
        progress: o.progress,
      }),
    IncrementalWindow: async (_e: TaskStepInput) => {
      throw notBuilt('incremental sync');
    },
    RunReplicator: async (_e: unknown) => {
      throw notBuilt('incremental sync');
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

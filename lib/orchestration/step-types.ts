import type { FullSyncUnit } from '../fullsync/copy-unit.ts';
import type { TaskSpec } from '../task/spec.ts';

/**
 * The shapes passed between the state machine's states. Only ids, the spec (which on AWS holds secret
 * ARNs, never passwords) and counters travel in the execution; data and passwords never do.
 */

/** Environment variable naming the task for the Fargate replicator (the only override it gets). */
export const REPLICATOR_TASK_ENV = 'REDIS_DTS_TASK_ID';

/** Where a continued execution picks the task up again. */
export type ResumePhase = 'fullsync' | 'incremental';

/** The input of a continued execution (besides a task spec or `{spec}` for a new one): the task only. */
export interface ContinueInput {
  taskId: string;
  phase: ResumePhase;
}

/** Validate's result, kept at `$.task` for every later state. */
export interface TaskState {
  taskId: string;
  spec: TaskSpec;
  syncType: TaskSpec['syncType'];
  incrementalMode: TaskSpec['incremental']['mode'];
  /** 'start' on a first execution; otherwise the phase a continued execution resumes at. */
  resumeAt: 'start' | ResumePhase;
}

/**
 * Validate's result for an input that is not a valid task spec: the execution ends in the SpecRefused
 * Fail state with these as its error and cause, so the console shows the spec's problems as the
 * failure's cause (a caught Lambda error would show them inside a JSON blob with a stack trace).
 */
export interface SpecRefusal {
  refused: { error: string; cause: string };
}

/** The full sync's reader as the precheck chose it (the spec's `auto` resolved). */
export type FullSyncReader = 'scan' | 'rdb';

/** Input of the steps that work on a task. */
export interface TaskStepInput {
  taskId: string;
  spec: TaskSpec;
}

/** PlanUnits' result: the units still to copy, and a per-unit bound of CopyChunk iterations. */
export interface PlanResult {
  units: FullSyncUnit[];
  allDone: boolean;
  /** Iterations each unit's loop may run in this execution before the machine continues as new. */
  maxIterations: number;
}

/** Input of one CopyChunk invocation: a Map item plus the previous invocation's progress. */
export interface CopyChunkInput extends TaskStepInput {
  unit: FullSyncUnit;
  progress?: CopyChunkResult;
}

export interface CopyChunkResult {
  done: boolean;
  /** CopyChunk invocations of this unit in this execution, counting this one. */
  iteration: number;
  keysWritten: number;
  /** Keys this invocation wrote (for the KeysCopied metric). */
  keysThisRun: number;
}

/** A Catch's `$.error` (States.* or the Lambda's error name and its JSON cause). */
export interface CaughtError {
  Error?: string;
  Cause?: string;
}

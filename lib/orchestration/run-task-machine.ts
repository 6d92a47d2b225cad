import { StateMachine } from 'aws-local-stepfunctions';
import type { DtsError } from '../errors.ts';
import { HeldWatches } from '../notifications/held-watches.ts';
import type { TaskStore } from '../state/task-store.ts';
import { type LocalHandlerOptions, localExecutionContext, localTaskHandlers } from './local-handlers.ts';
import { recordFailureStep } from './record-failure-step.ts';
import { DTS_ERROR_PREFIX } from './step-error.ts';
import type { ContinueInput } from './step-types.ts';

const NO_VALIDATION = { validationOptions: { noValidate: true } } as never;

export interface RunTaskMachineOptions {
  store: TaskStore;
  copyChunkMs?: LocalHandlerOptions['copyChunkMs'];
  progress?: LocalHandlerOptions['progress'];
  onPrecheck?: LocalHandlerOptions['onPrecheck'];
  onVerify?: LocalHandlerOptions['onVerify'];
  signal?: LocalHandlerOptions['signal'];
  /** Called before each execution: 0 for the first, then once per continuation. */
  onExecution?: (index: number, input: unknown) => void;
}

/**
 * Runs a task through the task state machine in-process (aws-local-stepfunctions, every Task state a
 * local step), following its continue-as-new hand-overs until an execution ends. Resolves with the
 * last execution's output; a failed execution rejects with aws-local-stepfunctions' ExecutionError,
 * whose `cause` carries the Fail state's error name and cause. A permanent replicator failure ends the
 * execution at once with that DtsError (see localTaskHandlers' onPermanentFailure).
 */
export async function runTaskMachine(
  definition: object,
  input: unknown,
  o: RunTaskMachineOptions,
): Promise<{ output: unknown; executions: number }> {
  const watches = new HeldWatches();
  try {
    return await runExecutions(definition, input, o, watches);
  } finally {
    await watches.closeAll();
  }
}

async function runExecutions(
  definition: object,
  input: unknown,
  o: RunTaskMachineOptions,
  watches: HeldWatches,
): Promise<{ output: unknown; executions: number }> {
  let next: unknown = input;
  for (let index = 0; ; index++) {
    o.onExecution?.(index, next);
    const continued: { resume: ContinueInput }[] = [];
    let permanent: DtsError | undefined;
    // Not validated again here: that is about a sixth of a second per run (asl-validator compiles its JSON
    // schema), and the definition is the synthesized stack's, which test/infra/stack.test.ts validates.
    const execution = new StateMachine(definition as never, NO_VALIDATION).run(next as never, {
      context: localExecutionContext(next, `execution-${index + 1}`) as never,
      overrides: {
        taskResourceLocalHandlers: localTaskHandlers({
          store: o.store,
          copyChunkMs: o.copyChunkMs,
          progress: o.progress,
          onPrecheck: o.onPrecheck,
          onVerify: o.onVerify,
          signal: o.signal,
          watches,
          onContinue: (c) => {
            continued.push(c);
          },
          onPermanentFailure: (e) => {
            permanent ??= e;
            execution.abort();
          },
        }) as never,
      },
    });
    let output: unknown;
    try {
      output = await execution.result;
    } catch (e) {
      if (!permanent) throw e;
      await recordFailureStep(
        {
          taskId: taskIdOf(next),
          error: { Error: `${DTS_ERROR_PREFIX}${permanent.code}`, Cause: permanent.oneLine() },
        },
        { store: o.store },
      ).catch(() => undefined);
      throw permanent;
    }
    if (continued.length === 0) return { output, executions: index + 1 };
    next = continued[0];
  }
}

/** The task id of an execution's input: a spec, `{spec}` or a continuation. */
function taskIdOf(input: unknown): string | undefined {
  const i = input as { spec?: { taskId?: unknown }; resume?: { taskId?: unknown }; taskId?: unknown };
  const id = i?.spec?.taskId ?? i?.resume?.taskId ?? i?.taskId;
  return typeof id === 'string' ? id : undefined;
}

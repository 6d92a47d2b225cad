import { StateMachine } from 'aws-local-stepfunctions';
import type { TaskStore } from '../state/task-store.ts';
import { type LocalHandlerOptions, localExecutionContext, localTaskHandlers } from './local-handlers.ts';
import type { ContinueInput } from './step-types.ts';

export interface RunTaskMachineOptions {
  store: TaskStore;
  copyChunkMs?: LocalHandlerOptions['copyChunkMs'];
  progress?: LocalHandlerOptions['progress'];
  onPrecheck?: LocalHandlerOptions['onPrecheck'];
  onVerify?: LocalHandlerOptions['onVerify'];
  /** Called before each execution: 0 for the first, then once per continuation. */
  onExecution?: (index: number, input: unknown) => void;
}

/**
 * Runs a task through the task state machine in-process (aws-local-stepfunctions, every Task state a
 * local step), following its continue-as-new hand-overs until an execution ends. Resolves with the
 * last execution's output; a failed execution rejects with aws-local-stepfunctions' ExecutionError,
 * whose `cause` carries the Fail state's error name and cause.
 */
export async function runTaskMachine(
  definition: object,
  input: unknown,
  o: RunTaskMachineOptions,
): Promise<{ output: unknown; executions: number }> {
  let next: unknown = input;
  for (let index = 0; ; index++) {
    o.onExecution?.(index, next);
    const continued: { resume: ContinueInput }[] = [];
    const execution = new StateMachine(definition as never).run(next as never, {
      context: localExecutionContext(next, `execution-${index + 1}`) as never,
      overrides: {
        taskResourceLocalHandlers: localTaskHandlers({
          store: o.store,
          copyChunkMs: o.copyChunkMs,
          progress: o.progress,
          onPrecheck: o.onPrecheck,
          onVerify: o.onVerify,
          onContinue: (c) => {
            continued.push(c);
          },
        }) as never,
      },
    });
    const output = await execution.result;
    if (continued.length === 0) return { output, executions: index + 1 };
    next = continued[0];
  }
}

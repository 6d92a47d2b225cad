import { readFileSync } from 'node:fs';

/** Generated from the CDK stack by bin/generate-definition.ts (CI checks it is in step). */
export const TASK_DEFINITION_FILE = 'infra/generated/task-definition.json';

/**
 * What a Task state without TimeoutSeconds gets locally. On AWS such a state may run as long as the
 * execution (the replicator, until the task is stopped); aws-local-stepfunctions would end it after 60 s
 * instead, and its timer cannot go past 2^31 ms (24.8 days).
 */
export const LOCAL_UNBOUNDED_TASK_SECONDS = 24 * 24 * 3600;

/**
 * The task state machine's definition, as deployed, for the local runner; the one local difference:
 * Task states without a timeout get LOCAL_UNBOUNDED_TASK_SECONDS.
 */
export function loadTaskDefinition(): object {
  const definition = JSON.parse(
    readFileSync(new URL(`../../${TASK_DEFINITION_FILE}`, import.meta.url), 'utf8'),
  ) as StateContainer;
  withLocalTimeouts(definition);
  return definition;
}

interface StateContainer {
  States?: Record<
    string,
    { Type?: string; TimeoutSeconds?: number; ItemProcessor?: StateContainer; Iterator?: StateContainer }
  >;
}

function withLocalTimeouts(container: StateContainer): void {
  for (const state of Object.values(container.States ?? {})) {
    if (state.Type === 'Task' && state.TimeoutSeconds === undefined) {
      state.TimeoutSeconds = LOCAL_UNBOUNDED_TASK_SECONDS;
    }
    if (state.ItemProcessor) withLocalTimeouts(state.ItemProcessor);
    if (state.Iterator) withLocalTimeouts(state.Iterator);
  }
}

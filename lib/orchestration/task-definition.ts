import { readFileSync } from 'node:fs';

/** Generated from the CDK stack by bin/generate-definition.ts (CI checks it is in step). */
export const TASK_DEFINITION_FILE = 'infra/generated/task-definition.json';

/** The task state machine's definition, exactly as deployed, for the local runner. */
export function loadTaskDefinition(): object {
  return JSON.parse(
    readFileSync(new URL(`../../${TASK_DEFINITION_FILE}`, import.meta.url), 'utf8'),
  ) as object;
}

#!/usr/bin/env node
/**
 * Writes infra/generated/task-definition.json, the task state machine's definition as `cdk synth`
 * builds it, which the local runner (`redis-dts sync`) executes. Synthesizing the stack takes seconds;
 * reading this file takes none. `--check` (CI) exits 1 when the file and the stack disagree.
 */
import { synthTaskDefinition } from '../infra/definition-json.ts';
import { TASK_DEFINITION_FILE } from '../lib/orchestration/task-definition.ts';
import { writeOrCheck } from './generated-file.ts';

writeOrCheck(
  TASK_DEFINITION_FILE,
  `${JSON.stringify(synthTaskDefinition(), null, 2)}\n`,
  process.argv.includes('--check'),
  'node bin/generate-definition.ts',
);

#!/usr/bin/env node
/**
 * Writes schema/task-spec.schema.json from the zod schema in lib/task/spec.ts, so the file console users
 * read can never drift from the validation the code does. `--check` (for CI) changes nothing and exits 1
 * when the file is missing or out of date.
 */
import { renderTaskSpecJsonSchema, SCHEMA_FILE } from '../lib/task/spec.ts';
import { writeOrCheck } from './generated-file.ts';

writeOrCheck(
  SCHEMA_FILE,
  renderTaskSpecJsonSchema(),
  process.argv.includes('--check'),
  'node bin/generate-schema.ts',
);

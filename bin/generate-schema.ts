#!/usr/bin/env node
/**
 * Writes schema/task-spec.schema.json from the zod schema in lib/task/spec.ts, so the file console users
 * read can never drift from the validation the code does. `--check` (for CI) changes nothing and exits 1
 * when the file is missing or out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderTaskSpecJsonSchema, SCHEMA_FILE } from '../lib/task/spec.ts';

const file = fileURLToPath(new URL(`../${SCHEMA_FILE}`, import.meta.url));
const wanted = renderTaskSpecJsonSchema();

if (process.argv.includes('--check')) {
  let current: string | undefined;
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    current = undefined;
  }
  if (current !== wanted) {
    process.stderr.write(
      `error: ${SCHEMA_FILE} is ${current === undefined ? 'missing' : 'out of date'}\n` +
        'fix: run `node bin/generate-schema.ts` and commit the result\n',
    );
    process.exit(1);
  }
  process.stdout.write(`${SCHEMA_FILE} is up to date\n`);
} else {
  writeFileSync(file, wanted);
  process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
}

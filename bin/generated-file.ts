import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Files generated from code and checked in (the task-spec JSON Schema, the command table, the state
 * machine definition): writes `relativePath` (from the repository root), or with `check` changes
 * nothing and exits 1 when the file is missing or differs, naming the command that regenerates it.
 */
export function writeOrCheck(relativePath: string, wanted: string, check: boolean, regenerate: string): void {
  const file = fileURLToPath(new URL(`../${relativePath}`, import.meta.url));
  if (!check) {
    writeFileSync(file, wanted);
    process.stdout.write(`wrote ${relativePath}\n`);
    return;
  }
  let current: string | undefined;
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    current = undefined;
  }
  if (current !== wanted) {
    process.stderr.write(
      `error: ${relativePath} is ${current === undefined ? 'missing' : 'out of date'}\n` +
        `fix: run \`${regenerate}\` and commit the result\n`,
    );
    process.exit(1);
  }
  process.stdout.write(`${relativePath} is up to date\n`);
}

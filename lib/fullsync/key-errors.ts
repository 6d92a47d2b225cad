import { DtsError } from '../errors.ts';
import { printableKey } from './copy-key-in-parts.ts';
import type { KeyError } from './restore-writer.ts';

/** Keys the destination refused, as one error naming a few of them: never swallowed, never fatal mid-copy. */
export function keyErrorsError(failed: number, examples: readonly KeyError[]): DtsError {
  const named = examples
    .slice(0, 5)
    .map((e) => `${printableKey(e.key)}: ${e.error}`)
    .join('; ');
  return new DtsError(
    'KEYS_FAILED',
    `${failed} key(s) could not be written to the destination (${named})`,
    'fix the cause named for each key (e.g. a missing module, an incompatible RDB version) and run the same task again',
  );
}

import { DtsError, isDtsError } from '../errors.ts';
import { printableKey } from './copy-key-in-parts.ts';
import type { KeyError } from './restore-writer.ts';

/** Keys the destination refused, as one error naming a few of them: never swallowed, never fatal mid-copy. */
export function keyErrorsError(failed: number, examples: readonly KeyError[]): DtsError {
  const named = examples
    .slice(0, 5)
    .map((e) => `${printableKey(e.key)}: ${e.error}`)
    .join('; ');
  // Above proto-max-bulk-len: where CONFIG is disabled the limit was assumed (precheck target-bulk-limit).
  const tooLong = examples.some((e) => /invalid bulk length/i.test(e.error));
  return new DtsError(
    'KEYS_FAILED',
    `${failed} key(s) could not be written to the destination (${named})`,
    tooLong
      ? "a value is larger than the destination's proto-max-bulk-len (invalid bulk length): raise it above the largest value (CONFIG SET proto-max-bulk-len, or the parameter group of a managed service) and run the same task again"
      : 'fix the cause named for each key (e.g. a missing module, an incompatible RDB version) and run the same task again',
  );
}

/**
 * A destination that refuses a bulk over its proto-max-bulk-len replies `invalid bulk length` and closes
 * the connection, and the close often overtakes the reply (the rest of the payload is still arriving, so
 * the kernel resets the link). Where that limit was assumed (CONFIG disabled), a lost destination link
 * during the copy says so, instead of only "the server closed the connection".
 */
export function withAssumedBulkLimit(e: unknown, assumedBytes: number | undefined): unknown {
  if (
    assumedBytes === undefined ||
    !isDtsError(e) ||
    e.code !== 'CONNECTION_LOST' ||
    !e.message.startsWith('target')
  ) {
    return e;
  }
  return new DtsError(
    e.code,
    `${e.message}; its proto-max-bulk-len could not be read (CONFIG is unavailable) and ${Math.round(assumedBytes / 1024 / 1024)} MB was assumed, ` +
      'and a destination closes the connection on a value above its limit',
    `check proto-max-bulk-len in the destination's parameter group and raise it above the largest value; otherwise ${e.fix}`,
    { cause: e },
  );
}

import { isDtsError } from '../errors.ts';

/** Step errors for DtsErrors carry this prefix, so Catch/Retry rules can name a code. */
export const DTS_ERROR_PREFIX = 'DtsError.';

/**
 * How a step reports a DtsError to the state machine (a Lambda's error name and message become the
 * state's Error and Cause): named `DtsError.<code>`, with `message. Fix: fix` as the message, which
 * RecordFailure splits again. Other errors pass unchanged.
 */
export function asStepError(e: unknown): unknown {
  if (!isDtsError(e)) return e;
  const out = new Error(e.oneLine(), { cause: e });
  out.name = `${DTS_ERROR_PREFIX}${e.code}`;
  return out;
}

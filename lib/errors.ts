/**
 * Every failure a user can cause or fix is a DtsError: one line naming the cause, and one naming the fix.
 * The CLI prints `error: <message>` and `fix: <fix>`, and exits non-zero; handlers put both in the task's
 * last error. Anything else that escapes is a bug and is printed with its stack.
 */
export class DtsError extends Error {
  override readonly name = 'DtsError';
  readonly code: string;
  readonly fix: string;

  constructor(code: string, message: string, fix: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.fix = fix;
  }

  /** `message. Fix: fix` on one line, for logs and task state. */
  oneLine(): string {
    return `${this.message}. Fix: ${this.fix}`;
  }
}

export function isDtsError(e: unknown): e is DtsError {
  return e instanceof DtsError;
}

import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { ProgressReporter, type ProgressSink, silentProgress } from '../progress/progress-reporter.ts';
import { UsageError } from './usage-error.ts';

/**
 * Flags that describe where and what, shared by sync, precheck and verify so that one spelling means
 * one thing everywhere; `specInput` (sync-command.ts) maps them onto the task spec.
 */
export const ENDPOINT_OPTIONS = {
  spec: { type: 'string' },
  source: { type: 'string' },
  target: { type: 'string' },
  'source-password-env': { type: 'string' },
  'target-password-env': { type: 'string' },
  'source-tls-ca': { type: 'string' },
  'target-tls-ca': { type: 'string' },
  'source-tls-insecure': { type: 'boolean' },
  'target-tls-insecure': { type: 'boolean' },
} as const;

/** The source's renamed replication commands: sync and precheck (verify does not replicate). */
export const REPLICATION_OPTIONS = {
  'source-psync-command': { type: 'string' },
  'source-replconf-command': { type: 'string' },
} as const;

export const SELECTION_OPTIONS = {
  dbs: { type: 'string' },
  'db-map': { type: 'string' },
  'include-prefix': { type: 'string', multiple: true },
  'exclude-prefix': { type: 'string', multiple: true },
} as const;

/** parseArgs, strict, with its complaint turned into a usage error that points at the command's --help. */
export function parseFlags<const O extends ParseArgsOptionsConfig>(
  argv: string[],
  options: O,
  command: string,
) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError(
      (e as Error).message.split('\n')[0]!.replace(/^Unknown option/, 'unknown option'),
      command,
    );
  }
}

/** --progress: auto (a bar on a terminal, JSON lines otherwise) | bar | json | off. */
export function progressSink(mode: string | undefined, command: string): ProgressSink {
  switch (mode ?? 'auto') {
    case 'auto':
      return new ProgressReporter();
    case 'bar':
      return new ProgressReporter({ tty: true });
    case 'json':
      return new ProgressReporter({ tty: false });
    case 'off':
      return silentProgress;
    default:
      throw new UsageError(`--progress '${mode}': expected auto, bar, json or off`, command);
  }
}

/** Commands that take no positional arguments say so instead of ignoring them. */
export function noPositionals(positionals: string[], command: string): void {
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`, command);
}

/** Numbers stay numbers; anything else is passed on so the spec schema names it in its error. */
export function numberish(s: string): number | string {
  return /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : s;
}

/**
 * Runs `work` with a stop signal wired to SIGINT/SIGTERM: the first asks for a clean stop (work in
 * flight finishes, state is kept), the second exits at once with 130.
 */
export async function withStopSignals<T>(
  progress: ProgressSink,
  inFlight: string,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130);
    progress.log(`stopping after the ${inFlight} in flight (Ctrl-C again to quit at once)`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await work(stop.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

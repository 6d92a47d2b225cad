import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/redis-dts.ts', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI in a child process (the way a user does), with progress as JSON lines. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return collect(startCli(args, env));
}

export function startCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function collect(child: ChildProcess): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/**
 * For tests of the scan reader's own behaviour (SCAN chunks, their cursors and checkpoints, the catch-up
 * re-copy of keys written during the copy): the default reader, auto, takes the RDB where it can.
 */
export const SCAN_READER = ['--full-sync-reader', 'scan'] as const;

/** `redis-dts sync` full+incremental with JSON progress; `--yes` accepts the precheck's warnings. */
export function syncArgs(source: string, target: string, state: string, extra: string[] = []): string[] {
  return [
    'sync',
    '--source',
    source,
    '--target',
    target,
    '--state-dir',
    state,
    '--progress',
    'json',
    '--yes',
    ...extra,
  ];
}

export interface WatchedCli {
  child: ChildProcess;
  /**
   * Resolves once stdout or stderr has shown `text`; rejects if the CLI exits first, or after `timeoutMs`
   * (given) with everything printed so far, so a stalled run shows where it stopped instead of a bare
   * test timeout.
   */
  until(text: string, timeoutMs?: number): Promise<void>;
  /** `done`, or after `timeoutMs` the CLI is killed and this rejects with everything it printed. */
  doneWithin(timeoutMs: number): Promise<CliResult>;
  /** Everything printed so far, both streams in arrival order. */
  output(): string;
  done: Promise<CliResult>;
}

/** The CLI's output as it comes, with a way to wait for a line. */
export function watchCli(child: ChildProcess): WatchedCli {
  let seen = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  const onData = (d: Buffer) => {
    seen += d.toString();
    for (const w of [...waiters]) {
      if (seen.includes(w.text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const done = collect(child);
  return {
    child,
    until: (text, timeoutMs) =>
      seen.includes(text)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer =
              timeoutMs === undefined
                ? undefined
                : setTimeout(
                    () =>
                      reject(new Error(`the CLI did not print '${text}' within ${timeoutMs} ms:\n${seen}`)),
                    timeoutMs,
                  );
            waiters.push({
              text,
              resolve: () => {
                clearTimeout(timer);
                resolve();
              },
            });
            done.then((r) => {
              clearTimeout(timer);
              reject(new Error(`the CLI exited (${r.code}) before printing '${text}':\n${seen}`));
            });
          }),
    doneWithin: (timeoutMs) =>
      new Promise<CliResult>((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`the CLI had not ended after ${timeoutMs} ms (killed); it printed:\n${seen}`));
        }, timeoutMs);
        done.then(
          (r) => {
            clearTimeout(timer);
            resolve(r);
          },
          (e: unknown) => {
            clearTimeout(timer);
            reject(e);
          },
        );
      }),
    output: () => seen,
    done,
  };
}

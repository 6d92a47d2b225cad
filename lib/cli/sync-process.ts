import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `redis-dts sync` is the long-running command (an incremental sync runs until stopped), and the one
 * whose memory matters. Node's defaults suit short, allocation-heavy programs, not it:
 *
 * - V8 grows the young generation up to 64 MB a semi-space (128 MB of RSS) when much survives a
 *   scavenge, which loading the AWS SDK, dynalite and aws-local-stepfunctions does; under a saturated
 *   replication stream it then stays there. What the sync keeps young is small (the bounded stream
 *   queue and the batches in flight), so 16 MB semi-spaces save ~30 MB idle and ~100 MB at saturation.
 *   8 MB saved a little more but promoted the commands in flight often enough that, in about half the
 *   runs of bench/incremental.ts, full GCs took 2.5 times as long and the replicator fell behind at
 *   saturation (ratio 0.69-0.75 against 0.90-0.96); 16 MB gave 0.93-0.98 in five runs out of five.
 * - The commands in flight outlive a scavenge or two, so they are promoted, and with them the views
 *   that pin whole 64 KB socket chunks and encoded batches: external memory that only a full GC frees.
 *   V8 lets the old generation grow up to a few times its live size before that GC; growing it by 20%
 *   runs the (mostly concurrent) full GC sooner, which keeps the pinned chunks to ~10 MB instead of
 *   bursts of 40-60 MB (saturation peak 168-189 MB instead of 284-295 MB).
 * - glibc serves the 64 KB socket read buffers from its heaps and keeps them after they are freed (one
 *   arena per thread, and the dynamic mmap threshold climbs); mmap'ing them and trimming above 1 MB
 *   hands them back, so the peak follows what is live rather than the largest burst so far.
 * - Node strips the types of each .ts file with a WebAssembly compiler it loads on first use, ~30 MB of
 *   RSS for the whole run. Node's compile cache (NODE_COMPILE_CACHE, in the system temp dir as Node's own
 *   default) also keeps the stripped sources: once a run has filled it, the next ones never load that
 *   compiler.
 *
 * All must be set before the process starts, so the CLI replaces itself (execve: same pid, so
 * supervisors and `kill` still see one process) with the same command plus these settings. A setting
 * the user chose (in the command line, NODE_OPTIONS or the environment) is kept as it is.
 */

/** Marks the re-executed process, so it does not re-execute again. */
export const TUNED_ENV = 'REDIS_DTS_SYNC_TUNED';

export const SYNC_V8_FLAGS = ['--max-semi-space-size=16', '--heap-growing-percent=20'] as const;

export const SYNC_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '65536',
  MALLOC_TRIM_THRESHOLD_: '1048576',
};

export interface ProcessView {
  execPath: string;
  /** process.execArgv: the node flags of this process. */
  execArgv: readonly string[];
  /** The script path (process.argv[1]). */
  script: string;
  /** The CLI arguments (process.argv.slice(2)). */
  args: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  platform: string;
  /** Where the compile cache goes unless the user set NODE_COMPILE_CACHE. */
  compileCacheDir: string;
}

/**
 * The argv and environment to re-execute this CLI with, or undefined when it should run as it is: not
 * `sync` (or only its help), already re-executed, or not on Linux (the malloc settings are glibc's,
 * and execve is POSIX-only).
 */
export function syncReexec(p: ProcessView): { argv: string[]; env: Record<string, string> } | undefined {
  if (p.args[0] !== 'sync' || p.args.includes('--help') || p.args.includes('-h')) return undefined;
  if (p.env[TUNED_ENV] !== undefined || p.platform !== 'linux') return undefined;
  const userFlags = [...p.execArgv, ...(p.env.NODE_OPTIONS ?? '').split(/\s+/)];
  const flags = SYNC_V8_FLAGS.filter((f) => !userFlags.some((u) => u.startsWith(f.split('=')[0]!)));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.env)) if (v !== undefined) env[k] = v;
  for (const [k, v] of Object.entries(SYNC_MALLOC_ENV)) env[k] ??= v;
  // Node honours NODE_DISABLE_COMPILE_CACHE over this.
  env.NODE_COMPILE_CACHE ??= p.compileCacheDir;
  env[TUNED_ENV] = '1';
  return { argv: [p.execPath, ...flags, ...p.execArgv, p.script, ...p.args], env };
}

/** Replaces this process with the tuned one when syncReexec says so; returns only when it does not. */
export function reexecForSync(): void {
  // Node >= 22.15 / 23.11; without it (or in a worker) the sync simply runs untuned.
  const execve = (process as { execve?: (file: string, args: string[], env: object) => never }).execve;
  if (typeof execve !== 'function' || process.argv[1] === undefined) return;
  const plan = syncReexec({
    execPath: process.execPath,
    execArgv: process.execArgv,
    script: process.argv[1],
    args: process.argv.slice(2),
    env: process.env,
    platform: process.platform,
    compileCacheDir: join(tmpdir(), 'node-compile-cache'),
  });
  if (plan) execve.call(process, process.execPath, plan.argv, plan.env);
}

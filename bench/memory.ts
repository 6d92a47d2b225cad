/**
 * npm run bench:memory [-- --sizes 10,50,100,200,500 --budget 128mb --whole]
 *
 * Peak RSS of the sync process against the size of the largest value. For each size S (MB), a source
 * holds one string of S MB (incompressible) and 1,000 small keys; then, each into an empty server:
 *   - `redis-dts sync --sync-type full --verify off --memory-budget <budget>`: its own peak RSS (the
 *     summary's process.resourceUsage().maxRSS) and MB/s over the whole CLI run;
 *   - `redis-dts verify --memory-budget <budget>` of that copy: its peak RSS;
 *   - a native replica (REPLICAOF) of the same source, timed to master_link_status:up with the data
 *     loaded: the copy's time as a ratio to it;
 *   - with --whole, the same sync with a budget of 64 GB (the value read whole, as before the budget):
 *     what the budget saves.
 * Flat peaks mean the memory is bounded by the budget, not by the value. Every copy is compared with
 * DEBUG DIGEST at the end.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { seedBigValues } from '../test/support/big-values.ts';
import { assertSameData } from '../test/support/compare.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../test/support/redis-server.ts';
import { seedManyKeys } from '../test/support/seed.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10,50,100,200,500' },
    budget: { type: 'string', default: '128mb' },
    whole: { type: 'boolean', default: false },
  },
});
const sizes = values.sizes.split(',').map(Number);
const MiB = 1024 * 1024;
const BIN = new URL('../bin/redis-dts.ts', import.meta.url).pathname;

interface Run {
  seconds: number;
  peakRssMb: number;
}

const dirs: string[] = [];
const rows: string[][] = [];
try {
  for (const size of sizes) {
    const source = await startRedis({ args: ['--proto-max-bulk-len', '1gb'] });
    await seedBigValues(source.url, { stringBytes: size * MiB });
    await seedManyKeys(source.url, { count: 1000 });

    const native = await nativeReplication(source);
    const target = await startRedis();
    const sync = await runCli([
      'sync',
      ...endpoints(source, target),
      ...syncFlags(),
      '--memory-budget',
      values.budget,
    ]);
    await assertSameData(source.url, target.url);
    const verify = await runCli([
      'verify',
      ...endpoints(source, target),
      '--progress',
      'json',
      '--memory-budget',
      values.budget,
    ]);
    const row = [
      `${size} MB`,
      `${sync.peakRssMb.toFixed(0)} MB`,
      `${(size / sync.seconds).toFixed(1)} MB/s`,
      `${(native / sync.seconds).toFixed(2)}`,
      `${verify.peakRssMb.toFixed(0)} MB`,
    ];
    if (values.whole) {
      const wholeTarget = await startRedis({ args: ['--proto-max-bulk-len', '1gb'] });
      const whole = await runCli([
        'sync',
        ...endpoints(source, wholeTarget),
        ...syncFlags(),
        '--memory-budget',
        '64gb',
      ]);
      await assertSameData(source.url, wholeTarget.url);
      row.push(`${whole.peakRssMb.toFixed(0)} MB`);
    }
    rows.push(row);
    await stopAllRedis();
  }

  console.log(
    `\nRESULT peak RSS against the largest value (memory budget ${values.budget}; same machine, same run)`,
  );
  const head = ['largest value', 'sync peak RSS', 'sync', 'of native', 'verify peak RSS'];
  if (values.whole) head.push('sync read whole');
  for (const row of [head, ...rows]) console.log(row.map((c) => c.padEnd(17)).join(' '));
} finally {
  await stopAllRedis();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

function endpoints(source: RedisProcess, target: RedisProcess): string[] {
  return ['--source', source.url, '--target', target.url];
}

function syncFlags(): string[] {
  const state = mkdtempSync(join(tmpdir(), 'redis-dts-bench-memory-'));
  dirs.push(state);
  return ['--sync-type', 'full', '--verify', 'off', '--state-dir', state, '--progress', 'json', '--yes'];
}

/** Seconds from REPLICAOF until a fresh replica reports the link up (its RDB loaded). */
async function nativeReplication(source: RedisProcess): Promise<number> {
  const replica = await startRedis();
  const t0 = performance.now();
  await replica.cli('REPLICAOF', '127.0.0.1', String(source.port));
  for (;;) {
    const info = await replica.cli('INFO', 'replication');
    if (info.includes('master_link_status:up')) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (performance.now() - t0) / 1000;
  await replica.stop();
  return seconds;
}

/** Runs the CLI; its summary line carries the process's own peak RSS. */
async function runCli(args: string[]): Promise<Run> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((res) => child.once('close', res));
  if (code !== 0) throw new Error(`redis-dts ${args[0]} exited ${code}:\n${out.slice(-3000)}`);
  const line = out.split('\n').find((l) => l.startsWith('{') && l.includes('"peakRssMb"'));
  if (!line) throw new Error(`no summary line:\n${out.slice(-3000)}`);
  return { seconds: (performance.now() - t0) / 1000, peakRssMb: JSON.parse(line).peakRssMb };
}

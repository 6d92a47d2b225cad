/**
 * npm run bench:notifications [-- --rates 20000,50000 --ramp 80000,120000,160000 --seconds 15 --keys 100000]
 *
 * The notification reader (incremental.reader notifications) against native replication, in one run:
 * one source S (notify-keyspace-events KEA), a native replica R (REPLICAOF S, the reference) and a
 * destination D fed by `redis-dts sync --sync-type incremental --incremental-reader notifications`
 * (the real CLI). For each write rate a paced writer (its own process) runs SET/INCR over --keys keys
 * for --seconds, while this process measures:
 *   lag end to end: every 5 ms `SET bench:probe <n>` on S; R and D are polled every ms for it, and the
 *     time from the write until each shows it is one sample (p50/p99, ours and native);
 *   re-copied keys/s and the dirty keys waiting, from the CLI's progress lines;
 *   falling behind: the rate at which keys still wait at the end of the window exceed one second of
 *     writes, or the p99 lag passes one second.
 * Then writes stop, the task ends with its cut-over repair round (SIGTERM), and DEBUG DIGEST of S, R
 * and D must be equal. Figures, not assertions (except the digest).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startRedis, stopAllRedis } from '../test/support/redis-server.ts';
import { pacedWrites } from './paced-writes.ts';

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '20000,50000' },
    ramp: { type: 'string', default: '80000,120000,160000' },
    seconds: { type: 'string', default: '15' },
    keys: { type: 'string', default: '100000' },
    'paced-writer': { type: 'string' },
  },
});
if (values['paced-writer']) {
  const [port, rate, ms, keys] = values['paced-writer'].split(',').map(Number);
  console.log(String(await pacedWrites(port!, rate!, ms!, { keys: keys!, value: 'xxxxxxxxxx' })));
  process.exit(0);
}
const seconds = Number(values.seconds);
const keySpace = Number(values.keys);
const rates = [...values.rates.split(','), ...values.ramp.split(',')].filter(Boolean).map(Number);

interface Progress {
  repairing: boolean;
  opsPerSecond: number;
  dirtyKeys: number;
  keysRecopied: number;
  gaps: number;
  p99LagMs?: number;
}

const stateDir = mkdtempSync(join(tmpdir(), 'redis-dts-bench-notify-'));
const source = await startRedis({ args: ['--notify-keyspace-events', 'KEA'] });
const replica = await startRedis();
const dest = await startRedis();
const s = new Redis(source.port, '127.0.0.1');
const r = new Redis(replica.port, '127.0.0.1');
const d = new Redis(dest.port, '127.0.0.1');
const progress: Progress[] = [];
let child: ChildProcessWithoutNullStreams | undefined;
try {
  await r.replicaof('127.0.0.1', source.port);
  await waitFor(async () => (await r.info('replication')).includes('master_link_status:up'), 'R link up');
  child = startOurs(source.url, dest.url, progress);
  await waitFor(() => Promise.resolve(progress.length > 0), 'redis-dts incremental');
  console.log(
    `setup: S :${source.port} (KEA), native replica R :${replica.port}, redis-dts → D :${dest.port}`,
  );
  const rows: string[] = [];
  let behindAt: number | undefined;
  let keptUp = 0;
  for (const rate of rates) {
    const seen = progress.length;
    const [achieved, lag] = await Promise.all([writeFor(rate), measureLag(seconds * 1000)]);
    const window = progress.slice(seen);
    const recopied = window.length > 0 ? window.reduce((n, p) => n + p.opsPerSecond, 0) / window.length : 0;
    const waiting = window.at(-1)?.dirtyKeys ?? 0;
    const behind = waiting > achieved || (lag.ours.p99 ?? Number.POSITIVE_INFINITY) > 1000;
    if (behind && (behindAt === undefined || rate < behindAt)) behindAt = rate;
    if (!behind) keptUp = Math.max(keptUp, rate);
    const row =
      `${rate.toLocaleString('en-US')} writes/s (achieved ${Math.round(achieved).toLocaleString('en-US')}): ` +
      `lag native p50 ${fmt(lag.native.p50)} p99 ${fmt(lag.native.p99)} | redis-dts p50 ${fmt(lag.ours.p50)} ` +
      `p99 ${fmt(lag.ours.p99)}, ${Math.round(recopied).toLocaleString('en-US')} keys/s re-copied, ` +
      `${waiting.toLocaleString('en-US')} waiting at the end${behind ? '  <- falls behind' : ''}`;
    rows.push(row);
    console.log(row);
    // Let a backlog drain before the next rate, so each row starts level.
    await waitFor(async () => (progress.at(-1)?.dirtyKeys ?? 0) === 0, 'drained', 120_000).catch(
      () => undefined,
    );
  }
  // Writes have stopped: wait for the waiting keys and any repair round (after a gap) to finish, so the
  // digests compare a settled copy; SIGTERM only copies what is already marked.
  const settled = performance.now();
  await waitFor(
    async () => {
      const p = progress.at(-1);
      return p !== undefined && p.dirtyKeys === 0 && !p.repairing && progress.length > 0;
    },
    'the copy to settle',
    600_000,
  );
  console.log(`settled ${((performance.now() - settled) / 1000).toFixed(1)} s after the last write`);
  const stopped = await stop(child);
  // The heartbeat key's DEL (at the end of the task) reaches R through its replication link.
  await waitFor(async () => (await r.exists(`redis-dts:heartbeat:bench`)) === 0, 'heartbeat removed on R');
  const [ds, dr, dd] = await Promise.all([digest(s), digest(r), digest(d)]);
  console.log('\nsummary');
  for (const row of rows) console.log(`  ${row}`);
  console.log(
    `  keeps up at ${keptUp.toLocaleString('en-US')} writes/s; falls behind at: ` +
      (behindAt === undefined
        ? 'no rate measured'
        : `${behindAt.toLocaleString('en-US')} writes/s (the lowest such rate)`),
  );
  console.log(`  gaps reported: ${progress.at(-1)?.gaps ?? 0}; stop: ${stopped}`);
  console.log(`  digests S ${ds} R ${dr} D ${dd}: ${ds === dr && dr === dd ? 'equal' : 'DIFFERENT'}`);
  if (!(ds === dr && dr === dd)) process.exitCode = 1;
} finally {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  for (const c of [s, r, d]) c.disconnect();
  await stopAllRedis();
  rmSync(stateDir, { recursive: true, force: true });
}

function startOurs(src: string, dst: string, into: Progress[]): ChildProcessWithoutNullStreams {
  const c = spawn(
    process.execPath,
    [
      new URL('../bin/redis-dts.ts', import.meta.url).pathname,
      ...['sync', '--source', src, '--target', dst, '--sync-type', 'incremental'],
      ...['--incremental-reader', 'notifications', '--until', 'stopped', '--task-id', 'bench'],
      ...['--state-dir', stateDir, '--progress', 'json', '--verify', 'off', '--yes'],
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  // Progress comes as JSON lines on stderr; other lines (errors, the summary) are shown as they come.
  let partial = '';
  c.stderr.on('data', (b: Buffer) => {
    const lines = (partial + b.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (line.includes('"reader":"notifications"') && line.includes('"dirtyKeys"')) {
        into.push(JSON.parse(line) as Progress);
      } else if (!line.startsWith('{') || /gap in keyspace events|repair round/.test(line)) {
        process.stderr.write(`${line}\n`);
      }
    }
  });
  c.stdout.on('data', (b: Buffer) => process.stdout.write(b));
  return c;
}

async function stop(c: ChildProcessWithoutNullStreams): Promise<string> {
  const exited = new Promise<number | null>((res) => c.once('close', res));
  c.kill('SIGTERM');
  const code = await Promise.race([exited, sleep(60_000).then(() => 'timeout' as const)]);
  return code === 0 ? 'clean exit 0' : `NOT CLEAN (${code})`;
}

/** The paced writer in its own process, so its CPU does not delay the lag sampler. */
function writeFor(rate: number): Promise<number> {
  return new Promise((res, rej) => {
    const w = spawn(process.execPath, [
      new URL(import.meta.url).pathname,
      '--paced-writer',
      `${source.port},${rate},${seconds * 1000},${keySpace}`,
    ]);
    let out = '';
    w.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    w.once('close', (code) => (code === 0 ? res(Number(out.trim())) : rej(new Error(`writer exit ${code}`))));
  });
}

interface Lag {
  p50: number | undefined;
  p99: number | undefined;
}

/** Probe writes every 5 ms; R and D are polled every ms; each probe's time to appear is a sample. */
async function measureLag(ms: number): Promise<{ native: Lag; ours: Lag }> {
  const written = new Map<number, number>();
  const samples = { native: [] as number[], ours: [] as number[] };
  const last = { native: 0, ours: 0 };
  const probeR = new Redis(replica.port, '127.0.0.1');
  const probeD = new Redis(dest.port, '127.0.0.1');
  const end = performance.now() + ms;
  const writer = (async () => {
    for (let n = 1; performance.now() < end; n++) {
      written.set(n, performance.now());
      await s.set('bench:probe', String(n));
      await sleep(5);
    }
  })();
  const poll = async (c: Redis, side: 'native' | 'ours') => {
    while (performance.now() < end + 200) {
      const v = Number(await c.get('bench:probe'));
      const now = performance.now();
      for (let n = last[side] + 1; n <= v; n++) {
        const at = written.get(n);
        if (at !== undefined) samples[side].push(now - at);
      }
      if (v > last[side]) last[side] = v;
      await sleep(1);
    }
  };
  await Promise.all([writer, poll(probeR, 'native'), poll(probeD, 'ours')]);
  probeR.disconnect();
  probeD.disconnect();
  return { native: percentiles(samples.native), ours: percentiles(samples.ours) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function percentiles(xs: number[]): Lag {
  const sorted = [...xs].sort((a, b) => a - b);
  const at = (p: number) => (sorted.length > 0 ? sorted[Math.floor((sorted.length - 1) * p)] : undefined);
  return { p50: at(0.5), p99: at(0.99) };
}

function fmt(ms: number | undefined): string {
  return ms === undefined ? 'n/a' : `${ms.toFixed(1)} ms`;
}

async function digest(c: Redis): Promise<string> {
  return String(await c.call('DEBUG', 'DIGEST'));
}

async function waitFor(f: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

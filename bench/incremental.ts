/**
 * npm run bench:incremental [-- --ops 2000000 --rates 10000,50000 --seconds 20]
 *
 * One source S, a native replica R (REPLICAOF S) and a destination D fed by
 * `redis-dts sync --sync-type incremental --until stopped` (the real CLI), all under the same writes:
 *   fixed rates: a paced writer holds each rate for --seconds; lag p50/p99 of R and of D is measured
 *                from replication offsets (see measureLag);
 *   saturation:  redis-benchmark at full speed; time from load start until R and D have applied S's
 *                final master_repl_offset, as MB/s of replication stream and commands/s, ratio ours/native;
 * then our peak RSS, and DEBUG DIGEST of S, R and D must be equal. Figures, not assertions (except the
 * digest): the targets (ratio >= 0.8, peak RSS < 200 MB) are judged by reading them.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startRedis, stopAllRedis } from '../test/support/redis-server.ts';
import { pacedWrites } from './paced-writes.ts';

const { values } = parseArgs({
  options: {
    ops: { type: 'string', default: '2000000' },
    rates: { type: 'string', default: '10000,50000' },
    seconds: { type: 'string', default: '20' },
    // Internal: this file re-run as the paced writer, in its own process so its CPU use does not delay
    // the lag sampler (or the other way round).
    'paced-writer': { type: 'string' },
  },
});
if (values['paced-writer']) {
  const [port, opsPerSecond, durationMs] = values['paced-writer'].split(',').map(Number);
  console.log(String(await pacedWrites(port!, opsPerSecond!, durationMs!)));
  process.exit(0);
}
const opsPerTest = Number(values.ops);
const rates = values.rates.split(',').map(Number);
const seconds = Number(values.seconds);
const BENCH_TESTS = ['set', 'incr', 'lpush', 'hset'];
const TASK_ID = 'bench';
// No --db-map, and redis-benchmark writes db 0 only: the marker lives in the target of db 0.
const MARKER_DB = 0;
const MARKER_KEY = `redis-dts:marker:${TASK_ID}:0`;
/** Give up when a replica that has not caught up applied nothing for this long. */
const STALL_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;

const stateDir = mkdtempSync(join(tmpdir(), 'redis-dts-bench-state-'));
const source = await startRedis();
const replica = await startRedis();
const dest = await startRedis();
const s = new Redis(source.port, '127.0.0.1');
const r = new Redis(replica.port, '127.0.0.1');
const d = new Redis(dest.port, '127.0.0.1', { db: MARKER_DB });
let ours: OurSync | undefined;
try {
  await r.replicaof('127.0.0.1', source.port);
  await until(
    async () => (await r.info('replication')).includes('master_link_status:up'),
    10_000,
    'R link up',
  );
  ours = startOurSync(source.url, dest.url);
  await ours.incremental;
  console.log(
    `redis-dts applying changes: RSS ${ours.rssMb().toFixed(0)} MB, peak ${ours.peakRssMb().toFixed(0)} MB`,
  );
  // Also proves the marker's offset is comparable with master_repl_offset before anything is timed.
  const settled = await sourceOffset();
  await waitApplied(() => settled, performance.now());
  console.log(`setup: S :${source.port}, native replica R :${replica.port}, redis-dts → D :${dest.port}`);

  const lagRows: { rate: number; achieved: number; native: Lag; ours: Lag; reported: string }[] = [];
  for (const rate of rates) {
    const row = await measureFixedRate(rate);
    lagRows.push({ ...row, rate, reported: reportedLag(ours) });
    console.log(
      `rate ${rate.toLocaleString('en-US')} ops/s (achieved ${Math.round(row.achieved).toLocaleString('en-US')}) ` +
        `for ${seconds} s: lag native p50 ${fmtLag(row.native.p50)} p99 ${fmtLag(row.native.p99)} | ` +
        `redis-dts p50 ${fmtLag(row.ours.p50)} p99 ${fmtLag(row.ours.p99)} ` +
        `(${row.ours.samples} source offsets sampled; redis-dts itself reports ${reportedLag(ours)}; ` +
        `its RSS ${ours.rssMb().toFixed(0)} MB, peak so far ${ours.peakRssMb().toFixed(0)} MB)`,
    );
  }

  const sat = await measureSaturation(ours);
  const streamMb = sat.bytes / 1e6;
  console.log(
    `saturation: ${sat.commands.toLocaleString('en-US')} commands, ${streamMb.toFixed(1)} MB of replication stream; ` +
      `redis-benchmark ran ${sat.loadSeconds.toFixed(2)} s (${sat.benchmarkSummary})`,
  );
  console.log(
    `  native applied all in ${sat.native.toFixed(2)} s = ${(streamMb / sat.native).toFixed(1)} MB/s, ` +
      `${rate(sat.commands, sat.native)} commands/s | redis-dts ${sat.ours.toFixed(2)} s = ` +
      `${(streamMb / sat.ours).toFixed(1)} MB/s, ${rate(sat.commands, sat.ours)} commands/s, ` +
      `${sat.oursCpuPercent.toFixed(0)}% CPU | ratio ours/native ${(sat.native / sat.ours).toFixed(2)}`,
  );
  console.log(`  last progress line: ${ours.lastProgressLine}`);
  console.log(`  redis-dts RSS ${ours.rssMb().toFixed(0)} MB, peak so far ${ours.peakRssMb().toFixed(0)} MB`);

  const peakRssMb = ours.peakRssMb();
  const stopped = await ours.stop();
  console.log(`redis-dts stop on SIGTERM: ${stopped}`);
  if (stopped !== 'clean exit 0')
    console.log(`redis-dts output (last 8 lines):\n${ours.lines.slice(-8).join('\n')}`);
  const digest = await compareDigests();

  console.log('\nRESULT incremental sync (redis-dts vs native REPLICAOF of the same source, same writes)');
  console.log(
    table(
      ['measure', 'native', 'redis-dts', 'ours/native', 'target'],
      [
        ...lagRows.flatMap((row) => [
          [
            `lag p50 @ ${row.rate.toLocaleString('en-US')} ops/s`,
            fmtLag(row.native.p50),
            fmtLag(row.ours.p50),
            '',
            '',
          ],
          [
            `lag p99 @ ${row.rate.toLocaleString('en-US')} ops/s`,
            fmtLag(row.native.p99),
            fmtLag(row.ours.p99),
            '',
            '',
          ],
        ]),
        ['saturation time (s)', sat.native.toFixed(2), sat.ours.toFixed(2), '', ''],
        [
          'saturation MB/s of stream',
          (streamMb / sat.native).toFixed(1),
          (streamMb / sat.ours).toFixed(1),
          (sat.native / sat.ours).toFixed(2),
          '>= 0.8',
        ],
        [
          'saturation commands/s',
          rate(sat.commands, sat.native),
          rate(sat.commands, sat.ours),
          (sat.native / sat.ours).toFixed(2),
          '>= 0.8',
        ],
        ['peak RSS (MB)', '', peakRssMb.toFixed(0), '', '< 200'],
        ['DEBUG DIGEST S = R = D', digest, digest, '', 'equal'],
        ['stop on SIGTERM', '', stopped, '', 'clean exit 0'],
      ],
    ),
  );
} catch (e) {
  if (ours) {
    console.error(`redis-dts output (last 40 lines):\n${ours.lines.slice(-40).join('\n')}`);
    await ours.stop().catch(() => {});
  }
  throw e;
} finally {
  s.disconnect();
  r.disconnect();
  d.disconnect();
  await stopAllRedis();
  rmSync(stateDir, { recursive: true, force: true });
}

// ---- our replicator ---------------------------------------------------------------------------------

interface OurSync {
  child: ChildProcessWithoutNullStreams;
  /** Resolves once it applies changes (not just catching up). */
  incremental: Promise<void>;
  lines: string[];
  lastProgress: Record<string, unknown> | undefined;
  lastProgressLine: string;
  peakRssMb(): number;
  rssMb(): number;
  cpuSeconds(): number;
  /** SIGTERM, then SIGKILL if it has not exited in time; says how it ended. */
  stop(): Promise<string>;
}

function startOurSync(sourceUrl: string, targetUrl: string): OurSync {
  const child = spawn(
    process.execPath,
    [
      new URL('../bin/redis-dts.ts', import.meta.url).pathname,
      'sync',
      '--source',
      sourceUrl,
      '--target',
      targetUrl,
      '--sync-type',
      'incremental',
      '--until',
      'stopped',
      '--task-id',
      TASK_ID,
      '--state-dir',
      stateDir,
      '--progress',
      'json',
      // Native replication verifies nothing; the copy is checked below with DEBUG DIGEST.
      '--verify',
      'off',
      '--yes',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let onIncremental: () => void;
  let onFailed: (e: Error) => void;
  const incremental = new Promise<void>((res, rej) => {
    onIncremental = res;
    onFailed = rej;
  });
  const exited = new Promise<number | null>((res) => child.once('close', res));
  const sync: OurSync = {
    child,
    incremental,
    lines: [],
    lastProgress: undefined,
    lastProgressLine: '',
    peakRssMb: () => Number(/VmHWM:\s+(\d+) kB/.exec(procFile(child.pid!, 'status'))![1]) / 1024,
    rssMb: () => Number(/VmRSS:\s+(\d+) kB/.exec(procFile(child.pid!, 'status'))![1]) / 1024,
    cpuSeconds() {
      // utime and stime, fields 14 and 15 of /proc/<pid>/stat, counted after the ")" closing the name.
      const fields = procFile(child.pid!, 'stat').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timeout = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timeout);
      if (code === 0) return 'clean exit 0';
      // Reported, not thrown: the digest comparison below is still worth running.
      process.exitCode = 1;
      return code === null
        ? `NOT CLEAN: no exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM, killed`
        : `NOT CLEAN: exit code ${code}`;
    },
  };
  let partial = '';
  const onData = (data: Buffer) => {
    const parts = (partial + data.toString()).split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      sync.lines.push(line);
      if (!line.startsWith('{')) continue;
      const json = JSON.parse(line) as Record<string, unknown>;
      if (json.appliedOffset !== undefined) {
        sync.lastProgress = json;
        sync.lastProgressLine = line;
      }
      if (json.phase === 'incremental' && String(json.msg ?? '').includes('applying changes'))
        onIncremental();
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  void exited.then((code) =>
    onFailed(new Error(`redis-dts exited ${code} before applying changes:\n${sync.lines.join('\n')}`)),
  );
  return sync;
}

function procFile(pid: number, name: string): string {
  return readFileSync(`/proc/${pid}/${name}`, 'utf8');
}

function reportedLag(sync: OurSync): string {
  const p = sync.lastProgress;
  return p ? `heartbeat lag p50 ${p.p50LagMs} ms, p99 ${p.p99LagMs} ms over its last 60 s` : 'nothing';
}

// ---- offsets ----------------------------------------------------------------------------------------

async function sourceOffset(): Promise<number> {
  return infoField(await s.info('replication'), 'master_repl_offset');
}

async function nativeOffset(): Promise<number> {
  return infoField(await r.info('replication'), 'slave_repl_offset');
}

/** The marker is `<replid>:<offset>:<db>`, written in the same transaction as each applied batch. */
async function oursOffset(): Promise<number> {
  const marker = await d.get(MARKER_KEY);
  return marker ? Number(marker.split(':')[1]) : -1;
}

function infoField(info: string, field: string): number {
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(info);
  if (!m) throw new Error(`no ${field} in INFO`);
  return Number(m[1]);
}

/** Wall time (ms, performance.now) when each of R and D first showed an applied offset >= `target()`. */
async function waitApplied(
  target: () => number | undefined,
  t0: number,
): Promise<{ native: number; ours: number }> {
  let native = -1;
  let oursAt = -1;
  let moved = { at: t0, native: -1, ours: -1 };
  while (native < 0 || oursAt < 0) {
    const [rn, dn] = await Promise.all([nativeOffset(), oursOffset()]);
    const now = performance.now();
    const goal = target();
    if (goal !== undefined) {
      if (native < 0 && rn >= goal) native = now;
      if (oursAt < 0 && dn >= goal) oursAt = now;
    }
    if (rn !== moved.native || dn !== moved.ours) moved = { at: now, native: rn, ours: dn };
    else if (now - moved.at > STALL_TIMEOUT_MS)
      throw new Error(`no progress for ${STALL_TIMEOUT_MS} ms: source ${goal}, R ${rn}, D ${dn}`);
    await sleep(2);
  }
  return { native, ours: oursAt };
}

// ---- fixed rates ------------------------------------------------------------------------------------

interface Lag {
  p50: number;
  p99: number;
  samples: number;
}

/**
 * Lag from offsets rather than probe keys, so the measurement writes nothing (the digests stay equal and
 * the load is exactly the paced writer's): every ~1 ms S's master_repl_offset, R's slave_repl_offset and
 * D's marker offset are read together. For each new source offset seen at time t, the lag of a replica
 * is (time of the first round in which its applied offset reached it) − t. Resolution is one round
 * (~1-2 ms), and the same for both, so sub-millisecond native lag shows as 0-2 ms.
 */
async function measureFixedRate(opsPerSecond: number): Promise<{ achieved: number; native: Lag; ours: Lag }> {
  const rounds: { t: number; src: number; native: number; ours: number }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [src, rn, dn] = await Promise.all([sourceOffset(), nativeOffset(), oursOffset()]);
      rounds.push({ t: performance.now(), src, native: rn, ours: dn });
      await sleep(1);
    }
  })();
  const achieved = await runPacedWriter(opsPerSecond, seconds * 1000);
  const last = await sourceOffset();
  await waitApplied(() => last, performance.now());
  sampling = false;
  await sampler;
  return {
    achieved,
    native: lagOf(rounds, (x) => x.native),
    ours: lagOf(rounds, (x) => x.ours),
  };
}

function lagOf(
  rounds: { t: number; src: number; native: number; ours: number }[],
  applied: (x: { native: number; ours: number }) => number,
): Lag {
  const lags: number[] = [];
  let j = 0;
  for (let i = 0; i < rounds.length; i++) {
    if (i > 0 && rounds[i]!.src <= rounds[i - 1]!.src) continue;
    if (j < i) j = i;
    while (j < rounds.length && applied(rounds[j]!) < rounds[i]!.src) j++;
    if (j === rounds.length) break;
    lags.push(rounds[j]!.t - rounds[i]!.t);
  }
  lags.sort((a, b) => a - b);
  const pct = (p: number) => lags[Math.min(lags.length - 1, Math.floor((p / 100) * lags.length))] ?? NaN;
  return { p50: pct(50), p99: pct(99), samples: lags.length };
}

async function runPacedWriter(opsPerSecond: number, durationMs: number): Promise<number> {
  const child = spawn(
    process.execPath,
    [import.meta.filename, '--paced-writer', `${source.port},${opsPerSecond},${durationMs}`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const code = await new Promise<number | null>((res) => child.once('close', res));
  if (code !== 0) throw new Error(`paced writer exited ${code}`);
  return Number(out.trim());
}

// ---- saturation -------------------------------------------------------------------------------------

async function measureSaturation(sync: OurSync): Promise<{
  commands: number;
  bytes: number;
  loadSeconds: number;
  benchmarkSummary: string;
  native: number;
  ours: number;
  oursCpuPercent: number;
}> {
  const start = await sourceOffset();
  const cpu0 = sync.cpuSeconds();
  const t0 = performance.now();
  let final: number | undefined;
  let loadSeconds = 0;
  const bench = spawn(
    'redis-benchmark',
    [
      ...['-h', '127.0.0.1', '-p', String(source.port)],
      ...['-t', BENCH_TESTS.join(','), '-n', String(opsPerTest), '-r', '100000', '-P', '16', '-q'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  bench.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  bench.stderr.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const benchDone = new Promise<void>((res, rej) =>
    bench.once('close', (code) => {
      if (code !== 0) return rej(new Error(`redis-benchmark exited ${code}: ${out}`));
      loadSeconds = (performance.now() - t0) / 1000;
      void sourceOffset().then((o) => {
        final = o;
        res();
      }, rej);
    }),
  );
  const [done] = await Promise.all([waitApplied(() => final, t0), benchDone]);
  const oursSeconds = (done.ours - t0) / 1000;
  return {
    // redis-benchmark runs -n requests per test (-t), one after the other.
    commands: opsPerTest * BENCH_TESTS.length,
    bytes: final! - start,
    loadSeconds,
    benchmarkSummary: out
      .split(/[\r\n]+/)
      .map((l) => l.trim())
      .filter((l) => l.includes('requests per second'))
      .map((l) => l.replace(/ requests per second.*/, '/s'))
      .join(', '),
    native: (done.native - t0) / 1000,
    ours: oursSeconds,
    oursCpuPercent: ((sync.cpuSeconds() - cpu0) / oursSeconds) * 100,
  };
}

// ---- consistency ------------------------------------------------------------------------------------

/**
 * Our own keys are removed first: the heartbeat on S (R replicates it, D never gets it) and the marker
 * and its skip hash on D. Every other key must be identical on all three.
 */
async function compareDigests(): Promise<string> {
  await deleteMatching(s, 'redis-dts:*');
  const last = await sourceOffset();
  await until(async () => (await nativeOffset()) >= last, 10_000, 'R applies the heartbeat deletion');
  await deleteMatching(d, 'redis-dts:*');
  const [ds, dr, dd] = (await Promise.all(
    [s, r, d].map(async (c) => String(await c.call('DEBUG', 'DIGEST'))),
  )) as [string, string, string];
  console.log(`DEBUG DIGEST: S ${ds}, R ${dr}, D ${dd}`);
  if (ds !== dr || ds !== dd) throw new Error(`DEBUG DIGEST differs: S ${ds}, R ${dr}, D ${dd}`);
  return ds.slice(0, 12);
}

async function deleteMatching(conn: Redis, pattern: string): Promise<void> {
  const dbs = [...(await conn.info('keyspace')).matchAll(/^db(\d+):/gm)].map((m) => Number(m[1]));
  const c = conn.duplicate();
  for (const db of dbs) {
    await c.select(db);
    let cursor = '0';
    do {
      const [next, keys] = await c.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length > 0) await c.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
  c.disconnect();
}

// ---- helpers ----------------------------------------------------------------------------------------

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(5);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

function rate(n: number, secs: number): string {
  return Math.round(n / secs).toLocaleString('en-US');
}

function fmtLag(ms: number): string {
  return Number.isNaN(ms) ? 'n/a' : `${ms.toFixed(1)} ms`;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

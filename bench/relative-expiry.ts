/**
 * node bench/relative-expiry.ts [-- --rate 5000 --seconds 10 --ops 400000]
 *
 * Relative expiries from a Redis 6.2 source (which propagates SETEX / EXPIRE as they were written):
 * a native replica R (REPLICAOF, 6.2) and redis-dts into a 7.0 destination D, under the same writes.
 *   paced:       SETEX and EXPIRE at --rate ops/s for --seconds; then every key's expiry on R and on D
 *                against the source's (PTTL + TIME on S and R, PEXPIRETIME on D): error p50 / p99 / max;
 *   saturation:  redis-benchmark -P 16 SETEX at full speed: time until R and D have applied the source's
 *                final offset, commands/s, ratio ours/native;
 * and how many commands redis-dts placed by the source clock versus re-copied. Figures, not assertions.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { LEGACY_EXPIRES_SCRIPT } from '../test/support/compare.ts';
import { startRedis, stopAllRedis } from '../test/support/redis-server.ts';
import { serverBuild } from '../test/support/server-builds.ts';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '5000' },
    seconds: { type: 'string', default: '10' },
    ops: { type: 'string', default: '400000' },
  },
});
const TASK_ID = 'bench-expiry';
const MARKER_KEY = `redis-dts:marker:${TASK_ID}:0`;
const KEYS = 20_000;

const build = serverBuild('redis-6.2.16');
if (!build.present) throw new Error(`${build.binary} is absent: this benchmark needs a Redis 6.2 source`);
const stateDir = mkdtempSync(join(tmpdir(), 'redis-dts-bench-expiry-'));
const source = await startRedis({ binary: build.binary, args: ['--repl-backlog-size', '256mb'] });
const replica = await startRedis({ binary: build.binary });
const dest = await startRedis();
const s = new Redis(source.port, '127.0.0.1');
const r = new Redis(replica.port, '127.0.0.1');
const d = new Redis(dest.port, '127.0.0.1');
let child: ChildProcess | undefined;
try {
  await r.replicaof('127.0.0.1', source.port);
  await until(async () => (await r.info('replication')).includes('master_link_status:up'), 'R link up');
  const sync = startSync(source.url, dest.url);
  child = sync.child;
  await sync.applying;
  // A few heartbeats, so the stream is shown live and the clock offset measured.
  await sleep(3000);

  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const written = await pacedExpiries(rate, seconds);
  await caughtUp(await sourceOffset());
  const ours = await expiryErrors(d, 'PEXPIRETIME');
  const native = await expiryErrors(r, 'PTTL');
  console.log(
    `paced: ${written.toLocaleString('en-US')} SETEX/EXPIRE in ${seconds} s (${rate.toLocaleString('en-US')}/s asked); ` +
      `expiry error against the source over ${ours.keys.toLocaleString('en-US')} keys:`,
  );
  console.log(`  native replica R: ${describe(native)}`);
  console.log(`  redis-dts D:      ${describe(ours)}`);

  const sat = await saturation(Number(values.ops));
  console.log(
    `saturation: ${sat.commands.toLocaleString('en-US')} SETEX (redis-benchmark -P 16): native ${sat.native.toFixed(2)} s ` +
      `(${Math.round(sat.commands / sat.native).toLocaleString('en-US')}/s), redis-dts ${sat.ours.toFixed(2)} s ` +
      `(${Math.round(sat.commands / sat.ours).toLocaleString('en-US')}/s), ratio ${(sat.native / sat.ours).toFixed(2)}`,
  );
  const summary = await sync.stop();
  console.log(`redis-dts: ${summary}`);
} finally {
  child?.kill('SIGKILL');
  s.disconnect();
  r.disconnect();
  d.disconnect();
  await stopAllRedis();
  rmSync(stateDir, { recursive: true, force: true });
}

function startSync(sourceUrl: string, targetUrl: string) {
  const c = spawn(
    process.execPath,
    [
      new URL('../bin/redis-dts.ts', import.meta.url).pathname,
      ...['sync', '--source', sourceUrl, '--target', targetUrl, '--sync-type', 'incremental'],
      ...['--until', 'stopped', '--task-id', TASK_ID, '--state-dir', stateDir, '--progress', 'json'],
      ...['--verify', 'off', '--yes'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let onApplying: () => void = () => {};
  const applying = new Promise<void>((res) => {
    onApplying = res;
  });
  const onData = (b: Buffer) => {
    out += b.toString();
    if (out.includes('incremental sync: applying changes')) onApplying();
  };
  c.stdout.on('data', onData);
  c.stderr.on('data', onData);
  const exited = new Promise<void>((res) => c.once('close', () => res()));
  return {
    child: c,
    applying,
    async stop(): Promise<string> {
      c.kill('SIGTERM');
      await exited;
      return /sync ended[^\n]*/.exec(out)?.[0] ?? `no summary:\n${out}`;
    },
  };
}

/** SETEX and EXPIRE (relative, 10–20 min) at `rate` per second, in 10 ms pipelines. */
async function pacedExpiries(rate: number, seconds: number): Promise<number> {
  const perTick = Math.max(1, Math.round(rate / 100));
  const end = Date.now() + seconds * 1000;
  let written = 0;
  let next = Date.now();
  while (Date.now() < end) {
    const p = s.pipeline();
    for (let i = 0; i < perTick; i++) {
      const key = `k:${Math.floor(Math.random() * KEYS)}`;
      const ttl = 600 + Math.floor(Math.random() * 600);
      if (i % 2 === 0) p.setex(key, ttl, 'v');
      else p.expire(key, ttl);
    }
    await p.exec();
    written += perTick;
    next += 10;
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
  }
  return written;
}

interface Errors {
  keys: number;
  p50: number;
  p99: number;
  max: number;
}

/** |expiry on the copy − expiry on the source| per key, the source read as PTTL + TIME. */
async function expiryErrors(copy: Redis, how: 'PEXPIRETIME' | 'PTTL'): Promise<Errors> {
  const errors: number[] = [];
  for (let start = 0; start < KEYS; start += 1000) {
    const keys = Array.from({ length: Math.min(1000, KEYS - start) }, (_, i) => `k:${start + i}`);
    const [src, cp] = await Promise.all([absoluteByPttl(s, keys), readExpiries(copy, keys, how)]);
    for (let i = 0; i < keys.length; i++) {
      if (src[i]! > 0 && cp[i]! > 0) errors.push(Math.abs(cp[i]! - src[i]!));
    }
  }
  errors.sort((a, b) => a - b);
  const at = (q: number) => errors[Math.min(errors.length - 1, Math.floor(q * errors.length))] ?? Number.NaN;
  return { keys: errors.length, p50: at(0.5), p99: at(0.99), max: errors.at(-1) ?? Number.NaN };
}

function absoluteByPttl(c: Redis, keys: string[]): Promise<number[]> {
  return c.eval(LEGACY_EXPIRES_SCRIPT, keys.length, ...keys) as Promise<number[]>;
}

async function readExpiries(c: Redis, keys: string[], how: 'PEXPIRETIME' | 'PTTL'): Promise<number[]> {
  if (how === 'PTTL') return absoluteByPttl(c, keys);
  const p = c.pipeline();
  for (const k of keys) p.call('PEXPIRETIME', k);
  return ((await p.exec()) ?? []).map(([, v]) => Number(v));
}

function describe(e: Errors): string {
  return `p50 ${e.p50} ms, p99 ${e.p99} ms, max ${e.max} ms`;
}

async function saturation(ops: number): Promise<{ commands: number; native: number; ours: number }> {
  const t0 = performance.now();
  await new Promise<void>((res, rej) => {
    const bench = spawn(
      'redis-benchmark',
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(source.port),
        '-n',
        String(ops),
        '-r',
        String(KEYS),
        '-P',
        '16',
        '-q',
      ].concat(['SETEX', 'k:__rand_int__', '900', 'v']),
      { stdio: 'ignore' },
    );
    bench.once('close', (code) => (code === 0 ? res() : rej(new Error(`redis-benchmark exited ${code}`))));
  });
  const final = await sourceOffset();
  let native = 0;
  let ours = 0;
  await until(async () => {
    const now = (performance.now() - t0) / 1000;
    if (!native && (await replicaOffset()) >= final) native = now;
    if (!ours && (await appliedOffset()) >= final) ours = now;
    return native > 0 && ours > 0;
  }, 'R and D caught up');
  return { commands: ops, native, ours };
}

async function sourceOffset(): Promise<number> {
  return Number(/master_repl_offset:(\d+)/.exec(await s.info('replication'))![1]);
}

async function replicaOffset(): Promise<number> {
  return Number(/slave_repl_offset:(\d+)/.exec(await r.info('replication'))?.[1] ?? 0);
}

/** The offset in redis-dts' marker on the destination (`<replid>:<offset>:<db>`). */
async function appliedOffset(): Promise<number> {
  const marker = await d.get(MARKER_KEY);
  return marker ? Number(marker.split(':')[1]) : 0;
}

async function caughtUp(offset: number): Promise<void> {
  await until(
    async () => (await appliedOffset()) >= offset && (await replicaOffset()) >= offset,
    'caught up',
  );
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(2);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

/**
 * npm run bench:cluster [-- --keys 500000 --ops 500000]
 *
 * What a cluster destination costs, against a standalone one, in the same run on the same machine:
 *   full sync:   `redis-dts sync --sync-type full` of --keys keys (DEBUG POPULATE, 100-byte values) into a
 *                standalone server and into a 3-master cluster; keys/s of each (whole CLI run);
 *   incremental: `redis-dts sync --sync-type incremental` into each, while redis-benchmark writes --ops
 *                commands per test (SET, INCR, LPUSH, HSET on random keys, so nearly every command is in
 *                its own slot: the worst case for per-slot transactions); time from the load's start until
 *                the destination applied the source's final offset, next to a native replica (REPLICAOF)
 *                of the same source under the same load.
 * Figures only; the data of every destination is compared key by key at the end.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { assertSameKeys } from '../test/support/cluster-compare.ts';
import { type RedisClusterProcess, startRedisCluster } from '../test/support/redis-cluster.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../test/support/redis-server.ts';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '500000' },
    ops: { type: 'string', default: '500000' },
  },
});
const keyCount = Number(values.keys);
const opsPerTest = Number(values.ops);
const BENCH_TESTS = ['set', 'incr', 'lpush', 'hset'];
const BIG_BACKLOG = ['--repl-backlog-size', '512mb'];

const dirs: string[] = [];
const clusters: RedisClusterProcess[] = [];
const rows: string[][] = [];
try {
  // ---- full sync ----
  const source = await startRedis({ args: BIG_BACKLOG });
  await source.cli('DEBUG', 'POPULATE', String(keyCount), 'key', '100');
  const standalone = await startRedis();
  const cluster = await startRedisCluster({ masters: 3 });
  clusters.push(cluster);
  const fullStandalone = await timeCli(['--sync-type', 'full'], source, standalone.url);
  const fullCluster = await timeCli(['--sync-type', 'full'], source, cluster.url);
  const masters = cluster.masters.map((m) => m.url);
  await assertSameKeys([source.url], masters);
  await assertSameKeys([source.url], [standalone.url]);
  rows.push(
    ['full sync', `${keyCount.toLocaleString('en-US')} keys`, '', ''],
    ['  into standalone', `${fullStandalone.toFixed(1)} s`, rate(keyCount, fullStandalone), ''],
    [
      '  into 3-master cluster',
      `${fullCluster.toFixed(1)} s`,
      rate(keyCount, fullCluster),
      `${(fullStandalone / fullCluster).toFixed(2)} of standalone`,
    ],
  );

  // ---- incremental ----
  for (const [name, target, targetMasters] of [
    ['standalone', standalone.url, [standalone.url]],
    ['3-master cluster', cluster.url, masters],
  ] as const) {
    // The other destination's incremental phase wrote to the source meanwhile: bring this one level first.
    if (name !== 'standalone') await timeCli(['--sync-type', 'full'], source, target);
    const replica = await startRedis();
    await replica.cli('REPLICAOF', '127.0.0.1', String(source.port));
    await waitFor(async () => (await replica.cli('INFO', 'replication')).includes('master_link_status:up'));
    const r = await incrementalUnderLoad(source, replica, target, targetMasters);
    await assertSameKeys([source.url], targetMasters);
    rows.push(
      [`incremental into ${name}`, `${r.commands.toLocaleString('en-US')} commands`, '', ''],
      ['  native replica', `${r.native.toFixed(1)} s`, rate(r.commands, r.native), ''],
      [
        '  redis-dts',
        `${r.ours.toFixed(1)} s`,
        rate(r.commands, r.ours),
        `${(r.native / r.ours).toFixed(2)} of native`,
      ],
    );
    await replica.stop();
  }

  console.log('\nRESULT cluster destination vs standalone (same machine, same run)');
  for (const row of rows)
    console.log(`${row[0]!.padEnd(32)} ${row[1]!.padEnd(20)} ${row[2]!.padEnd(22)} ${row[3]}`);
} finally {
  await Promise.all(clusters.map((c) => c.stop()));
  await stopAllRedis();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

function rate(n: number, seconds: number): string {
  return `${Math.round(n / seconds).toLocaleString('en-US')}/s`;
}

function cliArgs(extra: string[], source: RedisProcess, target: string): string[] {
  const state = mkdtempSync(join(tmpdir(), 'redis-dts-bench-cluster-'));
  dirs.push(state);
  return [
    new URL('../bin/redis-dts.ts', import.meta.url).pathname,
    'sync',
    '--source',
    source.url,
    '--target',
    target,
    '--dbs',
    '0',
    '--state-dir',
    state,
    '--verify',
    'off',
    '--progress',
    'json',
    '--yes',
    '--existing-keys',
    'overwrite',
    ...extra,
  ];
}

async function timeCli(extra: string[], source: RedisProcess, target: string): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, cliArgs(extra, source, target), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((res) => child.once('close', res));
  if (code !== 0) throw new Error(`redis-dts exited ${code}:\n${out}`);
  return (performance.now() - t0) / 1000;
}

async function incrementalUnderLoad(
  source: RedisProcess,
  replica: RedisProcess,
  target: string,
  targetMasters: readonly string[],
): Promise<{ commands: number; native: number; ours: number }> {
  const child = spawn(
    process.execPath,
    cliArgs(['--sync-type', 'incremental', '--until', 'stopped', '--task-id', 'bench'], source, target),
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const ready = new Promise<void>((res, rej) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes('applying changes')) res();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('close', (code) => rej(new Error(`redis-dts exited ${code}:\n${out}`)));
  });
  await ready;
  const s = new Redis(source.url);
  const t0 = performance.now();
  await run('redis-benchmark', [
    ...['-h', '127.0.0.1', '-p', String(source.port)],
    ...['-t', BENCH_TESTS.join(','), '-n', String(opsPerTest), '-r', '100000', '-P', '16', '-q'],
  ]);
  const final = offsetOf(await s.info('replication'), 'master_repl_offset');
  const times = await Promise.all([
    waitFor(
      async () => offsetOf(await replica.cli('INFO', 'replication'), 'slave_repl_offset') >= final,
    ).then(() => (performance.now() - t0) / 1000),
    waitFor(async () => (await appliedOffset(targetMasters)) >= final).then(
      () => (performance.now() - t0) / 1000,
    ),
  ]);
  s.disconnect();
  child.kill('SIGTERM');
  await new Promise((res) => child.once('close', res));
  return { commands: opsPerTest * BENCH_TESTS.length, native: times[0], ours: times[1] };
}

/** The position redis-dts has applied everywhere: its marker, or the lowest of a cluster's masters' markers. */
async function appliedOffset(urls: readonly string[]): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (const url of urls) {
    const c = new Redis(url);
    try {
      const keys = await c.keys('redis-dts:marker:bench:*');
      for (const k of keys) {
        if (k.endsWith(':skip')) continue;
        const v = await c.get(k);
        if (v) best = Math.min(best, Number(v.split(':')[1]));
      }
    } finally {
      c.disconnect();
    }
  }
  return best === Number.POSITIVE_INFINITY ? -1 : best;
}

function offsetOf(info: string, field: string): number {
  return Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(info)?.[1] ?? -1);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.once('close', (code) => (code === 0 ? res() : rej(new Error(`${cmd} exited ${code}`))));
  });
}

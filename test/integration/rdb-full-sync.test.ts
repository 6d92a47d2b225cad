import { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { seedBigValues, touchBigValues } from '../support/big-values.ts';
import { runCli, SCAN_READER, startCli, syncArgs, watchCli as watch } from '../support/cli.ts';
import { assertSameKeys } from '../support/cluster-compare.ts';
import { assertSameData } from '../support/compare.ts';
import { type RedisClusterProcess, startRedisCluster } from '../support/redis-cluster.ts';
import { startRedis, stopAllRedis } from '../support/redis-server.ts';
import { seedEveryType } from '../support/seed.ts';
import { assertNoInternalKeys, seedDbs as seed, settle, sleep, stateDirs } from '../support/sync-helpers.ts';
import { startWriters } from '../support/writers.ts';

const dirs = stateDirs('redis-dts-rdb-sync-');
const stateDir = dirs.make;

const clusters: RedisClusterProcess[] = [];
async function cluster(o: Parameters<typeof startRedisCluster>[0]): Promise<RedisClusterProcess> {
  const c = await startRedisCluster(o);
  clusters.push(c);
  return c;
}

afterAll(async () => {
  await Promise.all(clusters.map((c) => c.stop()));
  await stopAllRedis();
  dirs.removeAll();
});

const RDB = ['--full-sync-reader', 'rdb'];

describe('redis-dts sync --full-sync-reader rdb', () => {
  it('copies the snapshot and continues on the same link: equal under non-idempotent writes, with a 1 MB backlog', async () => {
    // The default backlog is far smaller than what the writers write during the load: only the link the
    // snapshot came on (whose stream the source buffers for it) can carry those writes over.
    const source = await startRedis({ args: ['--repl-backlog-size', '1mb'] });
    const target = await startRedis();
    await seed(source, [0, 1, 7], 40_000);
    await seedEveryType(source.url);
    const writers = startWriters({ url: source.url, dbs: [0, 1, 7], writers: 4 });
    await sleep(300);
    const cli = watch(
      startCli(syncArgs(source.url, target.url, stateDir(), [...RDB, '--until', 'caught-up'])),
    );
    await cli.until('incremental sync: applying changes');
    await sleep(1500);
    const stats = await settle(writers);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(stats.ops).toBeGreaterThan(1000);
    expect(cli.output()).toMatch(
      /full sync: \d+ keys from the RDB .* snapshot at [0-9a-f]{40}:\d+, RDB checksum verified/,
    );
    // No catch-up: the stream starts exactly at the snapshot.
    expect(cli.output()).toContain('catch-up: re-copying 0 keys');
    expect(cli.output()).not.toContain('BACKLOG_LOST');
    expect(cli.output()).toContain('verify: consistent');
    await assertSameData(source.url, target.url);
    await assertNoInternalKeys(source.url, target.url);
    // One full resync (the snapshot) and no partial one: the stream went on on the snapshot's link.
    const info = await source.cli('INFO', 'stats');
    expect(info).toMatch(/sync_full:1\r?\n/);
    expect(info).toMatch(/sync_partial_ok:0\r?\n/);
  }, 180_000);

  it('cluster → cluster: one snapshot per master, side by side, each continued on its link', async () => {
    const source = await cluster({ masters: 3 });
    const target = await cluster({ masters: 2 });
    const client = new Cluster([{ host: source.masters[0]!.host, port: source.masters[0]!.port }]);
    try {
      for (let i = 0; i < 12_000; i += 500) {
        await Promise.all(
          Array.from({ length: 500 }, (_, j) =>
            (i + j) % 2 === 0
              ? client.set(`seed:${i + j}`, `v${i + j}`)
              : client.rpush(`seed:l:${i + j}`, 'a', 'b'),
          ),
        );
      }
    } finally {
      client.disconnect();
    }
    const writers = startWriters({ url: source.url, dbs: [0], writers: 4, cluster: true });
    const cli = watch(
      startCli(syncArgs(source.url, target.url, stateDir(), [...RDB, '--until', 'caught-up'])),
    );
    await cli.until('incremental sync: applying changes');
    await sleep(1500);
    await settle(writers);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(cli.output().match(/shard [^:]+: full sync: \d+ keys from the RDB/g)).toHaveLength(3);
    const masters = source.masters.map((m) => m.url);
    expect(
      await assertSameKeys(
        masters,
        target.masters.map((m) => m.url),
      ),
    ).toBeGreaterThan(12_000);
    for (const m of source.masters) expect(await m.cli('INFO', 'stats')).toMatch(/sync_partial_ok:0\r?\n/);
  }, 180_000);

  it('runs a full-only task from the RDB, with --dbs, --db-map and a prefix filter applied per key', async () => {
    const source = await startRedis();
    const target = await startRedis();
    await seed(source, [0, 1, 2], 3_000);
    await source.cli('-n', '1', 'SET', 'tmp:skip', 'x');
    const r = await runCli(
      syncArgs(source.url, target.url, stateDir(), [
        ...RDB,
        '--sync-type',
        'full',
        '--dbs',
        '0,1',
        '--db-map',
        '1:5',
        '--exclude-prefix',
        'tmp:',
      ]),
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // db 2's 3,000 keys and tmp:skip.
    expect(r.stdout + r.stderr).toMatch(
      /full sync: 6000 keys from the RDB \([\d.]+ MB, 3001 left out by the filters\)/,
    );
    expect(await target.cli('-n', '5', 'EXISTS', 'tmp:skip')).toBe('0');
    expect(await target.cli('-n', '2', 'DBSIZE')).toBe('0');
    expect(await target.cli('-n', '1', 'DBSIZE')).toBe('0');
    await source.cli('-n', '1', 'DEL', 'tmp:skip');
    await source.cli('-n', '2', 'FLUSHDB');
    await assertSameData(source.url, target.url, { dbMap: { 1: 5 } });
  }, 120_000);

  it('with auto, picks scan and says why when the spec rules the snapshot out, and rdb otherwise', async () => {
    const source = await startRedis();
    const target = await startRedis();
    await seed(source, [0], 100);
    const readerItem = async (extra: string[]) => {
      const r = await runCli([
        'precheck',
        '--source',
        source.url,
        '--target',
        target.url,
        '--json',
        ...extra,
      ]);
      const report = JSON.parse(r.stdout) as { items: { id: string; status: string; detail: string }[] };
      return report.items.find((i) => i.id === 'full-sync-reader');
    };
    const overwrite = await readerItem(['--full-sync-reader', 'auto', '--existing-keys', 'overwrite']);
    expect(overwrite?.status).toBe('passed');
    expect(overwrite?.detail).toMatch(
      /^scan \(auto\): with --existing-keys overwrite an interrupted RDB load/,
    );
    const lambda = await readerItem(['--full-sync-reader', 'auto', '--incremental-mode', 'lambda']);
    expect(lambda?.detail).toMatch(/^scan \(auto\): incremental\.mode lambda/);
    const throttled = await readerItem(['--max-keys-per-second', '5000']);
    expect(throttled?.detail).toMatch(/^scan \(auto\): the task is throttled/);
    const auto = await readerItem(['--full-sync-reader', 'auto']);
    expect(auto?.detail).toMatch(
      /^rdb \(auto\): PSYNC permitted; .* uses .* of .*; the fork's copy-on-write is estimated at/,
    );
    // auto is the default; scan, asked for, needs no such item.
    expect((await readerItem([]))?.detail).toMatch(/^rdb \(auto\): PSYNC permitted/);
    expect(await readerItem(['--full-sync-reader', 'scan'])).toBeUndefined();
  }, 60_000);

  it('refuses rdb with incremental mode lambda in the precheck, naming the fix', async () => {
    const source = await startRedis();
    const target = await startRedis();
    const r = await runCli(
      syncArgs(source.url, target.url, stateDir(), [...RDB, '--incremental-mode', 'lambda']),
    );
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(
      /--full-sync-reader rdb: incremental\.mode lambda: a Lambda window cannot hold the replication link/,
    );
    expect(await target.cli('DBSIZE')).toBe('0');
  }, 60_000);

  it('takes the snapshot again after a load was killed, emptying what it had written', async () => {
    const source = await startRedis();
    const target = await startRedis();
    await seed(source, [0, 3], 150_000);
    const state = stateDir();
    const args = syncArgs(source.url, target.url, state, [
      ...RDB,
      '--until',
      'caught-up',
      '--task-id',
      'rdb-redo',
    ]);
    const first = watch(startCli(args));
    await first.until("full sync: reading the source's RDB snapshot");
    // Wait for some keys to land, then kill the process in the middle of the load.
    for (let i = 0; i < 100 && (await target.cli('-n', '0', 'DBSIZE')) === '0'; i++) await sleep(20);
    first.child.kill('SIGKILL');
    await first.done.catch(() => undefined);
    const written = Number(await target.cli('-n', '0', 'DBSIZE'));
    expect(written).toBeGreaterThan(0);
    // Keys the first load copied and the source then lost: a second load alone would leave them behind.
    await source.cli('-n', '0', 'FLUSHDB');
    await source.cli('-n', '0', 'SET', 'after', 'kill');
    const second = await runCli(args);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.stdout + second.stderr).toMatch(
      /the full sync from the RDB was interrupted \(shard .*\): emptying destination dbs? 0(, 3)? and taking the snapshot again/,
    );
    await assertSameData(source.url, target.url);
  }, 180_000);

  it('onBacklogLost resync: a lost backlog empties the destination dbs and takes the full sync again from the RDB', async () => {
    // A 16 kB backlog cannot hold what the writers write during the scan full sync: the catch-up's PSYNC
    // is answered +FULLRESYNC.
    const source = await startRedis({ args: ['--repl-backlog-size', '16kb'] });
    const target = await startRedis();
    await seed(source, [0, 2], 30_000);
    const writers = startWriters({ url: source.url, dbs: [0, 2], writers: 4 });
    await sleep(300);
    const cli = watch(
      startCli(
        syncArgs(source.url, target.url, stateDir(), [
          ...SCAN_READER,
          '--on-backlog-lost',
          'resync',
          '--until',
          'caught-up',
        ]),
      ),
    );
    await cli.until('onBacklogLost is resync, so the full sync is taken again from the RDB');
    await cli.until('incremental sync: applying changes');
    await sleep(1000);
    await settle(writers);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(cli.output()).toMatch(/no longer holds the replication stream from [0-9a-f]{40}:\d+/);
    expect(cli.output()).toMatch(/destination dbs 0, 2 emptied first/);
    expect(cli.output()).toMatch(/full sync: \d+ keys from the RDB/);
    expect(cli.output()).toContain('verify: consistent');
    await assertSameData(source.url, target.url);
    await assertNoInternalKeys(source.url, target.url);
  }, 180_000);

  it('onBacklogLost resync is refused with --existing-keys overwrite: the task stops with BACKLOG_LOST and says why', async () => {
    const source = await startRedis({ args: ['--repl-backlog-size', '16kb'] });
    const target = await startRedis();
    await seed(source, [0], 30_000);
    const writers = startWriters({ url: source.url, dbs: [0], writers: 4 });
    await sleep(300);
    const r = await runCli(
      syncArgs(source.url, target.url, stateDir(), [
        '--full-sync-reader',
        'scan',
        '--on-backlog-lost',
        'resync',
        '--existing-keys',
        'overwrite',
        '--until',
        'caught-up',
      ]),
    );
    await writers.stop();
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/no longer holds the replication stream from [0-9a-f]{40}:\d+/);
    expect(r.stdout + r.stderr).toContain(
      'onBacklogLost resync would empty destination dbs that also hold keys of their own',
    );
  }, 120_000);

  it('values over the memory budget are walked over in the RDB, never held, and copied in parts at a stamp', async () => {
    const source = await startRedis();
    const target = await startRedis();
    await seed(source, [0], 10_000);
    // A 32 MB budget holds values up to 2 MB whole: these are larger (the list and the zset stay whole).
    await seedBigValues(source.url, {
      stringBytes: 24 * 2 ** 20,
      setMembers: 400_000,
      hashFields: 300_000,
      listElements: 1000,
    });
    await source.cli(
      'ZADD',
      'big:zset',
      ...Array.from({ length: 2000 }, (_, i) => [String(i), `m${i}`.repeat(50)]).flat(),
    );
    const dir = stateDir();
    const writers = startWriters({ url: source.url, dbs: [0], writers: 2 });
    let round = 0;
    let touching = true;
    const touch = (async () => {
      while (touching) {
        await touchBigValues(source.url, ++round);
        await sleep(50);
      }
    })();
    const cli = watch(
      startCli(
        syncArgs(source.url, target.url, dir, [...RDB, '--memory-budget', '64mb', '--until', 'caught-up']),
      ),
    );
    // Writes to the big values after the snapshot: in the stream, which skips them up to each one's copy.
    await cli.until('keys from the RDB');
    touching = false;
    await touch;
    await cli.until('incremental sync: applying changes');
    await sleep(1000);
    await settle(writers);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(round).toBeGreaterThan(0);
    expect(cli.output()).toMatch(
      /full sync: \d+ keys from the RDB .*; 3 keys too big to hold whole follow, copied in parts/,
    );
    expect(cli.output()).toMatch(/catch-up: re-copying 3 keys/);
    // The summary and status name them, with the load's peak RSS (issue #19 item 5).
    const inParts = /3 key\(s\) copied in parts \("(big:\w+)", "(big:\w+)", "(big:\w+)"\)/;
    const named = (text: string) => [...(text.match(inParts) ?? []).slice(1)].sort();
    const bigKeys = ['big:hash', 'big:set', 'big:string'];
    expect(named(cli.output()), cli.output()).toEqual(bigKeys);
    const status = await runCli(['status', '--state-dir', dir]);
    expect(status.stdout).toMatch(/memory {3}full-sync peak RSS \d+ MB; /);
    expect(named(status.stdout), status.stdout).toEqual(bigKeys);
    await assertSameData(source.url, target.url);
  }, 180_000);
});

import { afterAll, describe, expect, it } from 'vitest';
import { runCli, SCAN_READER, startCli, syncArgs, watchCli as watch } from '../support/cli.ts';
import { assertSameData } from '../support/compare.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { assertNoInternalKeys, seedDbs as seed, settle, sleep, stateDirs } from '../support/sync-helpers.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import { startWriters } from '../support/writers.ts';

const dirs = stateDirs('redis-dts-inc-');
const stateDir = dirs.make;

afterAll(async () => {
  await stopAllRedis();
  dirs.removeAll();
});

/** Writers run at full speed for seconds: the default 1 MB backlog would not hold the catch-up. */
const BIG_BACKLOG = { args: ['--repl-backlog-size', '256mb'] };

describe('redis-dts sync, full+incremental', () => {
  it('ends with equal data after concurrent non-idempotent writes during and after the full sync', async () => {
    const source = await startRedis(BIG_BACKLOG);
    const target = await startRedis();
    await seed(source, [0, 1], 60_000);
    const writers = startWriters({ url: source.url, dbs: [0, 1], writers: 4 });
    const cli = watch(
      startCli(syncArgs(source.url, target.url, stateDir(), [...SCAN_READER, '--until', 'caught-up'])),
    );
    await cli.until('incremental sync: applying changes');
    await sleep(1500);
    await settle(writers);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(cli.output()).toMatch(/catch-up: re-copying [1-9]\d* keys written during the full sync/);
    // The task's own Verify state, after incremental sync ended, found nothing either.
    expect(cli.output()).toContain('verify: consistent');
    await assertSameData(source.url, target.url);
    await assertNoInternalKeys(source.url, target.url);
  }, 180_000);

  it('copies dbs again after FLUSHDB and SWAPDB on the source during the full sync', async () => {
    const source = await startRedis(BIG_BACKLOG);
    const target = await startRedis();
    await seed(source, [0, 1, 2], 60_000);
    const writers = startWriters({ url: source.url, dbs: [0, 1, 2], writers: 3 });
    const cli = watch(
      startCli(syncArgs(source.url, target.url, stateDir(), [...SCAN_READER, '--until', 'caught-up'])),
    );
    await cli.until('copying db0');
    await source.cli('SWAPDB', '0', '1');
    await source.cli('-n', '2', 'FLUSHDB');
    await cli.until('incremental sync: applying changes');
    await sleep(1000);
    await settle(writers);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(cli.output()).toMatch(/catch-up: db \d+ changed as a whole \(FLUSHDB, FLUSHALL or SWAPDB\)/);
    await assertSameData(source.url, target.url);
  }, 180_000);

  it('replays FLUSHDB and SWAPDB during incremental sync', async () => {
    const source = await startRedis(BIG_BACKLOG);
    const target = await startRedis();
    await seed(source, [0, 1], 5_000);
    const writers = startWriters({ url: source.url, dbs: [0, 1], writers: 2 });
    const cli = watch(startCli(syncArgs(source.url, target.url, stateDir(), ['--until', 'caught-up'])));
    await cli.until('incremental sync: applying changes');
    await sleep(300);
    await source.cli('SWAPDB', '0', '1');
    await sleep(300);
    await source.cli('-n', '1', 'FLUSHDB');
    await sleep(500);
    await settle(writers);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    await assertSameData(source.url, target.url);
  }, 180_000);

  it('replays MOVE, COPY … DB and SWAPDB with their db arguments mapped through --db-map', async () => {
    const source = await startRedis(BIG_BACKLOG);
    const target = await startRedis();
    await seed(source, [0, 1], 2_000);
    const cli = watch(
      startCli(syncArgs(source.url, target.url, stateDir(), ['--until', 'caught-up', '--db-map', '0:2,1:3'])),
    );
    await cli.until('incremental sync: applying changes');
    await source.cli('SET', 'moved', 'm');
    await source.cli('MOVE', 'moved', '1');
    await source.cli('SET', 'copied', 'c');
    await source.cli('COPY', 'copied', 'copied', 'DB', '1');
    await source.cli('SWAPDB', '0', '1');
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    await assertSameData(source.url, target.url, { dbMap: { 0: 2, 1: 3 } });
    // SWAPDB 0 1 moved both keys into source db 0, so into destination db 2 (not into db 0 or 1).
    expect(await target.cli('-n', '2', 'GET', 'moved')).toBe('m');
    expect(await target.cli('-n', '0', 'DBSIZE')).toBe('0');
    // The SWAPDB carried the marker and the heartbeat into the other db: both were taken back.
    await assertNoInternalKeys(source.url, target.url);
  }, 120_000);

  it('verifies a sample on a schedule while it runs and reports inconsistent keys in the status', async () => {
    const source = await startRedis(BIG_BACKLOG);
    const target = await startRedis();
    await seed(source, [0], 2_000);
    const state = stateDir();
    const args = syncArgs(source.url, target.url, state, [
      '--verify-every',
      '1000',
      '--verify-sample-rate',
      '1',
    ]);
    const child = startCli(args);
    const cli = watch(child);
    await cli.until('sampled verification: 0 inconsistent of');
    // A write made on the destination behind the sync's back: only verification can see it.
    await target.cli('SET', 'seed:0:7', 'changed on the destination');
    await cli.until('sampled verification: 1 inconsistent of');
    const status = await runCli(['status', '--state-dir', state]);
    expect(status.stdout).toMatch(/sampled {2}1 inconsistent of \d+ keys verified at .*seed:0:7/);
    child.kill('SIGTERM');
    const r = await cli.done;
    // The Verify state after the stop finds the same key, and the task says so.
    expect(r.code, cli.output()).toBe(1);
    expect(cli.output()).toContain('seed:0:7');
  }, 120_000);

  it('a stop applies what the source had written when asked, so the Verify after it passes', async () => {
    const source = await startRedis(BIG_BACKLOG);
    const target = await startRedis();
    await seed(source, [0], 5_000);
    const state = stateDir();
    const writers = startWriters({ url: source.url, dbs: [0, 1], writers: 4 });
    const cli = watch(startCli(syncArgs(source.url, target.url, state)));
    await cli.until('incremental sync: applying changes');
    await sleep(1000);
    await writers.stop();
    // At once, without waiting for the sync to catch up.
    const taskId = `127.0.0.1-${source.port}-to-127.0.0.1-${target.port}`;
    const stop = await runCli(['stop', taskId, '--state-dir', state]);
    expect(stop.code, stop.stderr).toBe(0);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(cli.output()).toMatch(/stopping: applying the changes up to source offset \d+ first/);
    expect(cli.output()).toContain('verify: consistent');
    await sleep(700);
    await assertSameData(source.url, target.url);
  }, 120_000);

  it('survives kill -9 at five points (full sync, catch-up, incremental) with nothing lost or repeated', async () => {
    const source = await startRedis(BIG_BACKLOG);
    const target = await startRedis();
    await seed(source, [0, 1], 150_000);
    const state = stateDir();
    const writers = startWriters({ url: source.url, dbs: [0, 1], writers: 3 });
    // Where each run is killed: the output line to wait for, then a pause.
    const points: [string, number][] = [
      ['copying db0', 300],
      ['catch-up: reading', 0],
      ['incremental sync: applying changes', 200],
      ['incremental sync: applying changes', 900],
      ['incremental sync: applying changes', 1700],
    ];
    for (const [line, pause] of points) {
      const child = startCli(syncArgs(source.url, target.url, state, [...SCAN_READER]));
      const cli = watch(child);
      await cli.until(line);
      await sleep(pause);
      child.kill('SIGKILL');
      const r = await cli.done;
      expect(r.signal, cli.output()).toBe('SIGKILL');
    }
    await settle(writers);
    const cli = watch(
      startCli(syncArgs(source.url, target.url, state, [...SCAN_READER, '--until', 'caught-up'])),
    );
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(cli.output()).toContain("from the destination's marker");
    await assertSameData(source.url, target.url);
  }, 300_000);

  it('reconnects with +CONTINUE when the replication link drops mid-stream', async () => {
    const source = await startRedis(BIG_BACKLOG);
    const target = await startRedis();
    await seed(source, [0], 20_000);
    const proxy = await startTcpProxy({ host: source.host, port: source.port });
    try {
      const writers = startWriters({ url: source.url, dbs: [0, 1], writers: 3 });
      const cli = watch(startCli(syncArgs(proxy.url(), target.url, stateDir(), ['--until', 'caught-up'])));
      await cli.until('incremental sync: applying changes');
      for (let i = 0; i < 3; i++) {
        await sleep(700);
        proxy.dropAll();
      }
      await sleep(700);
      await settle(writers);
      const r = await cli.done;
      expect(r.code, cli.output()).toBe(0);
      expect(cli.output()).toContain('replication link lost');
      await assertSameData(source.url, target.url);
      // Every reconnect continued the stream: the source never had to send a new RDB.
      const info = await source.cli('INFO', 'stats');
      expect(info).toMatch(/sync_partial_ok:[1-9]/);
    } finally {
      await proxy.close();
    }
  }, 180_000);

  it('follows a source failover: the replica promoted, the old primary now its replica (+CONTINUE, new replid)', async () => {
    const source = await startRedis(BIG_BACKLOG);
    const replica = await startRedis(BIG_BACKLOG);
    const target = await startRedis();
    await replica.cli('REPLICAOF', source.host, String(source.port));
    await seed(source, [0], 5_000);
    const state = stateDir();
    // The sync reads from `source` throughout: first a primary, then a replica of the promoted one.
    const cli = watch(startCli(syncArgs(source.url, target.url, state)));
    await cli.until('incremental sync: applying changes');
    let writers = startWriters({ url: source.url, dbs: [0, 1], writers: 2 });
    await sleep(700);
    await writers.stop();
    // A coordinated failover (Redis' FAILOVER command): the primary pauses writes until its replica has
    // them all, then they swap roles. (Promoting a lagging replica loses writes: the old primary then
    // needs a full resync, and so does this task, which stops with BACKLOG_LOST.)
    // TO names the replica: redis-dts is a replica of the source too (listening port 0).
    await source.cli('FAILOVER', 'TO', replica.host, String(replica.port));
    const role = async (s: RedisProcess) => await s.cli('INFO', 'replication');
    while (!/role:master/.test(await role(replica)) || !/master_link_status:up/.test(await role(source))) {
      await sleep(50);
    }
    writers = startWriters({ url: replica.url, dbs: [0, 1], writers: 2 });
    await sleep(1500);
    await writers.stop();
    await sleep(700);
    const taskId = `127.0.0.1-${source.port}-to-127.0.0.1-${target.port}`;
    await runCli(['stop', taskId, '--state-dir', state]);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(cli.output()).toContain('replication link lost');
    expect(cli.output()).toContain('verify: consistent');
    // Its heartbeat key could not be deleted through the old primary, now read-only; it expires by its TTL.
    for (const key of await replica
      .cli('KEYS', 'redis-dts:heartbeat:*')
      .then((k) => k.split('\n').filter(Boolean))) {
      await replica.cli('DEL', key);
    }
    await assertSameData(replica.url, target.url);
  }, 120_000);

  it('fails loudly, naming repl-backlog-size, when the backlog no longer holds the start', async () => {
    const source = await startRedis({ args: ['--repl-backlog-size', '16kb'] });
    const target = await startRedis();
    await seed(source, [0], 150_000);
    const state = stateDir();
    const writers = startWriters({ url: source.url, dbs: [0], writers: 4 });
    const r = await runCli(syncArgs(source.url, target.url, state, [...SCAN_READER, '--until', 'caught-up']));
    await writers.stop();
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('repl-backlog-size');
    expect(r.stderr).toMatch(/error: .*backlog/);
    const status = await runCli(['status', '--state-dir', state]);
    expect(status.stdout).toMatch(/failed/);
    expect(status.stdout).toContain('no longer holds the replication stream');
    expect(status.stdout).toContain('repl-backlog-size');
  }, 180_000);
});

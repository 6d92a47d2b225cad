import { randomBytes, randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { captureStartStep } from '../../lib/orchestration/capture-start-step.ts';
import { replicateStep } from '../../lib/orchestration/replicate-step.ts';
import { createDynamoClient } from '../../lib/state/dynamo-client.ts';
import { startEmbeddedDynamo } from '../../lib/state/embedded-dynamo.ts';
import { TaskStore } from '../../lib/state/task-store.ts';
import { parseTaskSpec } from '../../lib/task/spec.ts';
import { runCli, startCli, syncArgs, watchCli as watch } from '../support/cli.ts';
import { assertSameKeys } from '../support/cluster-compare.ts';
import { assertSameData } from '../support/compare.ts';
import { startManagedRedis } from '../support/managed-redis.ts';
import { type RedisClusterProcess, startRedisCluster } from '../support/redis-cluster.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { assertNoInternalKeys, seedDbs as seed, settle, sleep, stateDirs } from '../support/sync-helpers.ts';
import { startWriters } from '../support/writers.ts';

const dirs = stateDirs('redis-dts-notify-');
const stateDir = dirs.make;
const clusters: RedisClusterProcess[] = [];

afterAll(async () => {
  await Promise.all(clusters.map((c) => c.stop()));
  await stopAllRedis();
  dirs.removeAll();
});

const NOTIFICATIONS = ['--until', 'caught-up', '--incremental-reader', 'notifications'];
const STARTED = 'incremental sync from keyspace notifications';

/** A source as ElastiCache looks from a client (no PSYNC, CONFIG, SYNC…), with KEA in its parameter group. */
function managedSource(): Promise<RedisProcess> {
  return startManagedRedis({ psync: 'disabled' }, { configLines: ['notify-keyspace-events KEA'] });
}

describe('redis-dts sync --incremental-reader notifications (source without PSYNC)', () => {
  it('full+notifications under the non-idempotent writer ends with equal digests', async () => {
    const source = await managedSource();
    const target = await startRedis();
    await seed(source, [0, 1], 10_000);
    const writers = startWriters({ url: source.url, dbs: [0, 1], writers: 4 });
    const cli = watch(startCli(syncArgs(source.url, target.url, stateDir(), NOTIFICATIONS)));
    await cli.until(STARTED);
    await sleep(1500);
    const stats = await settle(writers);
    for (const kind of ['INCR', 'LPUSH', 'APPEND', 'HINCRBY', 'EXPIRE', 'DEL', 'RPOPLPUSH', 'EVAL']) {
      expect(stats.byCommand[kind] ?? 0, kind).toBeGreaterThan(0);
    }
    const r = await cli.done;
    const out = cli.output();
    expect(r.code, out).toBe(0);
    // Subscribed in CaptureStart, so the writes made during the full sync were marked, not lost.
    expect(out).toContain('held since before the full sync');
    expect(out).toMatch(/re-copied [1-9][\d,]* changed keys/);
    // The cut-over's repair round found nothing left to copy, and the Verify state agreed.
    expect(out).toMatch(/repair round \d+: [1-9]\d* keys compared in [\d.]+ s, 0 differed/);
    expect(out).toContain('verify: consistent');
    await assertSameData(source.url, target.url);
    await assertNoInternalKeys(source.url, target.url);
  }, 180_000);

  it('reports each killed subscription as a gap, repairs it, and still ends equal', async () => {
    const source = await managedSource();
    const target = await startRedis();
    await seed(source, [0, 1], 10_000);
    const state = stateDir();
    const writers = startWriters({ url: source.url, dbs: [0, 1], writers: 4 });
    const cli = watch(startCli(syncArgs(source.url, target.url, state, NOTIFICATIONS)));
    await cli.until(STARTED);
    for (const n of [1, 2]) {
      await sleep(700);
      expect(Number(await source.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')), `kill ${n}`).toBeGreaterThan(0);
      await cli.until(`repair round ${n}:`);
    }
    await sleep(500);
    await settle(writers);
    const r = await cli.done;
    const out = cli.output();
    expect(r.code, out).toBe(0);
    expect(out.match(/gap in keyspace events on shard 0: the keyspace subscription was lost/g)?.length).toBe(
      2,
    );
    await assertSameData(source.url, target.url);
    // The gaps stay on the record: status shows them after the task ended.
    const status = await runCli(['status', '--state-dir', state]);
    expect(status.stdout).toMatch(/gaps\s+2 gap\(s\) in the events, last at .*subscription was lost/);
    // One round per gap, then the one before the cut-over.
    expect(Number(/repair\s+(\d+) round\(s\)/.exec(status.stdout)?.[1])).toBeGreaterThanOrEqual(3);
  }, 180_000);

  it('after kill -9, a rerun starts a fresh subscription with a repair round, and ends equal', async () => {
    const source = await managedSource();
    const target = await startRedis();
    await seed(source, [0], 5_000);
    const state = stateDir();
    const writers = startWriters({ url: source.url, dbs: [0], writers: 2 });
    const first = watch(
      startCli(syncArgs(source.url, target.url, state, ['--incremental-reader', 'notifications'])),
    );
    await first.until(STARTED);
    await sleep(700);
    first.child.kill('SIGKILL');
    await first.done;
    await sleep(500);
    const rerun = watch(startCli(syncArgs(source.url, target.url, state, NOTIFICATIONS)));
    await rerun.until(STARTED);
    await sleep(500);
    await settle(writers);
    const r = await rerun.done;
    expect(r.code, rerun.output()).toBe(0);
    expect(rerun.output()).toContain('(fresh: a repair round covers what came before)');
    expect(rerun.output()).toMatch(/repair round 1: .*the task was restarted/);
    await assertSameData(source.url, target.url);
    const status = await runCli(['status', '--state-dir', state]);
    expect(status.stdout).toContain('fresh: a repair round covers what came before');
  }, 180_000);

  it('sees heartbeat probes stop coming back (events switched off) as a gap, and repairs it', async () => {
    const source = await startRedis({ args: ['--notify-keyspace-events', 'KEA'] });
    const target = await startRedis();
    await seed(source, [0], 5_000);
    const writers = startWriters({ url: source.url, dbs: [0], writers: 2 });
    const cli = watch(startCli(syncArgs(source.url, target.url, stateDir(), NOTIFICATIONS)));
    await cli.until(STARTED);
    await sleep(500);
    // Nothing closes the subscription: the events simply stop, and the writes go on unseen.
    await source.cli('CONFIG', 'SET', 'notify-keyspace-events', '');
    await cli.until('heartbeat probes were written but none came back');
    await source.cli('CONFIG', 'SET', 'notify-keyspace-events', 'KEA');
    await sleep(500);
    await settle(writers);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    await assertSameData(source.url, target.url);
  }, 180_000);

  it('copies a changed key larger than the destination proto-max-bulk-len in parts', async () => {
    const source = await managedSource();
    const target = await startRedis({ args: ['--proto-max-bulk-len', '1mb'] });
    await seed(source, [0], 1_000);
    // Writers keep the source busy, so the cut-over waits for the big key's writes below.
    const writers = startWriters({ url: source.url, dbs: [0], writers: 1 });
    const cli = watch(startCli(syncArgs(source.url, target.url, stateDir(), NOTIFICATIONS)));
    await cli.until(STARTED);
    const c = new Redis(source.url);
    try {
      for (let i = 0; i < 20_000; i += 1000) {
        const fields = Array.from({ length: 1000 }, (_, j) => [
          `f${i + j}`,
          randomBytes(50).toString('hex'),
        ]).flat();
        await c.hset('big:hash', ...fields);
      }
      expect(((await c.callBuffer('DUMP', 'big:hash')) as Buffer).length).toBeGreaterThan(1024 * 1024);
    } finally {
      c.disconnect();
    }
    await sleep(500);
    await settle(writers);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(cli.output()).toContain('copying big key');
    await assertSameData(source.url, target.url);
  }, 120_000);

  it('handles FLUSHDB, SWAPDB, MOVE and RENAME during incremental sync, and --db-map', async () => {
    const source = await managedSource();
    const target = await startRedis();
    await seed(source, [0, 1, 2], 3_000);
    const writers = startWriters({ url: source.url, dbs: [0, 1], writers: 2 });
    const cli = watch(
      startCli(syncArgs(source.url, target.url, stateDir(), [...NOTIFICATIONS, '--db-map', '0:3,1:4,2:5'])),
    );
    await cli.until(STARTED);
    await source.cli('SET', 'to-move', 'm');
    await source.cli('MOVE', 'to-move', '1');
    await source.cli('-n', '2', 'SET', 'old-name', 'r');
    await source.cli('-n', '2', 'RENAME', 'old-name', 'new-name');
    await source.cli('SWAPDB', '0', '1');
    await cli.until('SWAPDB ran on the source');
    await source.cli('-n', '2', 'FLUSHDB');
    await cli.until('FLUSHDB ran on the source');
    await sleep(500);
    await settle(writers);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(await target.cli('-n', '5', 'DBSIZE')).toBe('0');
    await assertSameData(source.url, target.url, { dbMap: { 0: 3, 1: 4, 2: 5 } });
  }, 180_000);

  it('a 3-master cluster source: one subscription per master, every key equal', async () => {
    const source = await startRedisCluster({ masters: 3, args: ['--notify-keyspace-events', 'KEA'] });
    clusters.push(source);
    const target = await startRedis();
    const seeder = new Cluster([{ host: source.masters[0]!.host, port: source.masters[0]!.port }]);
    for (let i = 0; i < 6000; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => seeder.set(`seed:${i + j}`, `v${i + j}`)));
    }
    seeder.disconnect();
    const writers = startWriters({ url: source.url, dbs: [0], writers: 4, cluster: true });
    const cli = watch(
      startCli(syncArgs(source.url, target.url, stateDir(), [...NOTIFICATIONS, '--dbs', '0'])),
    );
    await cli.until(STARTED);
    await sleep(1500);
    await settle(writers);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(cli.output()).toMatch(/re-copied [1-9][\d,]* changed keys/);
    const masters = source.masters.map((m) => m.url);
    expect(await assertSameKeys(masters, [target.url])).toBeGreaterThan(6000);
    for (const m of masters) {
      const c = new Redis(m);
      expect(await c.keys('redis-dts:*').finally(() => c.disconnect()), m).toEqual([]);
    }
  }, 180_000);
});

describe('the Incremental state without a held subscription (the Fargate replicator on AWS)', () => {
  it('subscribes when it starts, repairs first, and ends equal at the cut-over', async () => {
    const dynamo = await startEmbeddedDynamo();
    const client = createDynamoClient({ endpoint: dynamo.endpoint });
    try {
      const store = new TaskStore(client, 'notification-replicator-test');
      await store.ensureTable();
      const source = await managedSource();
      const target = await startRedis();
      await seed(source, [0], 3_000);
      const taskId = `notify-${randomUUID()}`;
      const input = {
        source: { url: source.url },
        target: { url: target.url },
        syncType: 'incremental',
        existingKeys: 'overwrite',
        incremental: { reader: 'notifications', until: 'caught-up' },
      };
      const now = new Date().toISOString();
      await store.putTask({
        taskId,
        name: taskId,
        spec: input,
        status: 'running',
        phase: 'incremental',
        createdAt: now,
        updatedAt: now,
      });
      const spec = parseTaskSpec(input, { mode: 'aws' });
      // CaptureStart ran in a Lambda: it recorded the shard (from INFO, without PSYNC) and held nothing.
      await captureStartStep({ taskId, spec }, { store });
      const writers = startWriters({ url: source.url, dbs: [0], writers: 2 });
      const run = replicateStep({ taskId, spec }, { store });
      await sleep(1500);
      await settle(writers);
      const outcome = await run;
      expect(outcome.ended).toBe('caught-up');
      const status = (await store.getTask(taskId))?.value.notifications;
      expect(status?.subscription).toBe('fresh: a repair round covers what came before');
      // The first round copied the 3,000 keys the destination lacked; the last found nothing differing.
      expect(status?.repairRounds).toBeGreaterThanOrEqual(2);
      expect(status?.lastRepair?.keysDiffering).toBe(0);
      await assertSameData(source.url, target.url);
      await assertNoInternalKeys(source.url, target.url);
    } finally {
      client.destroy();
      await dynamo.close();
    }
  }, 120_000);
});

describe('the notify-keyspace-events precheck', () => {
  const precheck = (source: string, target: string, extra: string[] = []) =>
    runCli([
      'precheck',
      '--source',
      source,
      '--target',
      target,
      '--incremental-reader',
      'notifications',
      ...extra,
    ]);

  it('fails without K and A, naming the parameter-group setting, and sets it when allowed and asked', async () => {
    const source = await startRedis({ args: ['--notify-keyspace-events', 'Ex'] });
    const target = await startRedis();
    const refused = await precheck(source.url, target.url);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(
      /Keyspace events published by the source\s+Failed\s+notify-keyspace-events is "xE"/,
    );
    expect(refused.stdout.replace(/\s+/g, ' ')).toContain('parameter notify-keyspace-events = KAE');
    const set = await precheck(source.url, target.url, ['--set-notify-keyspace-events']);
    expect(set.stdout).toMatch(
      /Keyspace events published by the source\s+Passed\s+notify-keyspace-events was "xE"; set/,
    );
    expect(await source.cli('CONFIG', 'GET', 'notify-keyspace-events')).toMatch(/AKE/);
  }, 60_000);

  it('where CONFIG is refused, probes the events: fails when none come back, passes with KEA', async () => {
    const silent = await startManagedRedis({ psync: 'disabled' });
    const flowing = await managedSource();
    const target = await startRedis();
    const none = await precheck(silent.url, target.url);
    expect(none.code).toBe(1);
    expect(none.stdout.replace(/\s+/g, ' ')).toContain(
      'CONFIG is not available, and a probe key written on the source raised no keyspace event',
    );
    expect(none.stdout.replace(/\s+/g, ' ')).toContain("in the cluster's parameter group");
    const ok = await precheck(flowing.url, target.url);
    expect(ok.stdout.replace(/\s+/g, ' ')).toMatch(
      /Keyspace events published by the source Passed CONFIG is not available; a probe key raised every keyspace event class/,
    );
  }, 60_000);

  it('proposes --incremental-reader notifications when PSYNC is disabled', async () => {
    const source = await managedSource();
    const target = await startRedis();
    const r = await runCli(['precheck', '--source', source.url, '--target', target.url]);
    expect(r.code).toBe(1);
    expect(r.stdout.replace(/\s+/g, ' ')).toContain(
      'read the changes from keyspace events instead (--incremental-reader notifications;',
    );
  }, 60_000);
});

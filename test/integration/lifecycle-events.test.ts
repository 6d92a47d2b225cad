import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EVENT_DETAILS, type TaskEventEnvelope } from '../../lib/events/event-types.ts';
import { runCli, startCli, syncArgs, watchCli as watch } from '../support/cli.ts';
import { assertSameData } from '../support/compare.ts';
import { startManagedRedis } from '../support/managed-redis.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { assertNoInternalKeys, seedDbs as seed, settle, sleep, stateDirs } from '../support/sync-helpers.ts';
import { startWriters } from '../support/writers.ts';

const dirs = stateDirs('redis-dts-events-');

afterAll(async () => {
  await stopAllRedis();
  dirs.removeAll();
});

/** Writers run at full speed for seconds: the default 1 MB backlog would not hold the catch-up. */
const BIG_BACKLOG = { args: ['--repl-backlog-size', '256mb'] };

const taskIdOf = (source: RedisProcess, target: RedisProcess) =>
  `127.0.0.1-${source.port}-to-127.0.0.1-${target.port}`;

/** The --events-file as written: every line one event, valid against its detail's schema. */
function readEvents(file: string): TaskEventEnvelope[] {
  if (!existsSync(file)) return [];
  const events = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TaskEventEnvelope);
  for (const e of events) {
    expect(e.source).toBe('redis-dts');
    expect(EVENT_DETAILS[e['detail-type']].safeParse(e.detail).success, JSON.stringify(e)).toBe(true);
  }
  return events;
}

async function eventSeen(file: string, type: string, timeoutMs = 60_000): Promise<TaskEventEnvelope> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const e = readEvents(file).find((x) => x['detail-type'] === type);
    if (e) return e;
    if (Date.now() > until) throw new Error(`no '${type}' event in ${file}: ${readFileSync(file, 'utf8')}`);
    await sleep(200);
  }
}

describe('task lifecycle events and redis-dts cutover', () => {
  it('a full+incremental task under writers, cut over once they stop: its events in order, the data equal', async () => {
    const source = await startRedis(BIG_BACKLOG);
    const target = await startRedis();
    await seed(source, [0, 1], 20_000);
    const state = dirs.make();
    const file = join(state, 'events.jsonl');
    const writers = startWriters({ url: source.url, dbs: [0, 1], writers: 4 });
    const cli = watch(
      startCli(
        syncArgs(source.url, target.url, state, [
          '--events-file',
          file,
          '--caught-up-lag',
          '5s',
          '--caught-up-for',
          '1s',
        ]),
      ),
    );
    await cli.until('incremental sync: applying changes');
    await sleep(1500);
    await settle(writers);
    const caughtUp = await eventSeen(file, 'Caught Up');
    expect(caughtUp.detail).toMatchObject({ thresholdMs: 5000, forMs: 1000 });
    const taskId = taskIdOf(source, target);
    const cut = await runCli(['cutover', taskId, '--state-dir', state, '--quiet-timeout', '30s']);
    expect(cut.code, cut.stdout + cut.stderr).toBe(0);
    expect(cut.stdout).toContain('verify: consistent');
    expect(cut.stdout).toContain(`task '${taskId}' cut over`);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);

    const events = readEvents(file);
    expect([...new Set(events.map((e) => e['detail-type']))]).toEqual([
      'Task Started',
      'Precheck Passed',
      'Full Sync Completed',
      'Caught Up',
      'Task Cut Over',
    ]);
    const full = events.find((e) => e['detail-type'] === 'Full Sync Completed')!.detail as {
      keys: number;
      bytes: number;
      seconds: number;
      reader: string;
    };
    // auto, the default, takes the RDB on a local run with PSYNC.
    expect(full.reader).toBe('rdb');
    expect(full.keys).toBeGreaterThanOrEqual(40_000);
    expect(full.bytes).toBeGreaterThan(0);
    expect(full.seconds).toBeGreaterThan(0);
    expect(events.at(-1)!.detail).toMatchObject({
      taskId,
      quietTimeoutMs: 30_000,
      verify: { mode: 'full', skipped: false, consistent: true, keysDiffering: 0 },
    });
    expect(events[0]!.detail).toMatchObject({ taskId, resumed: false, syncType: 'full+incremental' });
    await assertSameData(source.url, target.url);
    await assertNoInternalKeys(source.url, target.url);
  }, 180_000);

  it('refuses the cut-over while a writer keeps writing past --quiet-timeout, and the task goes on', async () => {
    const source = await startRedis(BIG_BACKLOG);
    const target = await startRedis();
    await seed(source, [0], 2_000);
    const state = dirs.make();
    const file = join(state, 'events.jsonl');
    const cli = watch(startCli(syncArgs(source.url, target.url, state, ['--events-file', file])));
    await cli.until('incremental sync: applying changes');
    const writers = startWriters({ url: source.url, dbs: [0], writers: 2, ratePerWriter: 50 });
    const taskId = taskIdOf(source, target);
    const refused = await runCli(['cutover', taskId, '--state-dir', state, '--quiet-timeout', '3s']);
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(
      /^error: cut-over of '.*' refused: the source was still being written 3 s after/m,
    );
    expect(refused.stderr).toMatch(/^fix: stop the application's writes to the source/m);
    const event = await eventSeen(file, 'Cut Over Refused');
    expect(event.detail).toMatchObject({ taskId, quietTimeoutMs: 3000 });
    // Not ended: it still replicates.
    expect(cli.child.exitCode).toBeNull();
    expect(readEvents(file).map((e) => e['detail-type'])).not.toContain('Task Cut Over');
    // Once the writes stop, the same request goes through.
    await settle(writers);
    const cut = await runCli(['cutover', taskId, '--state-dir', state]);
    expect(cut.code, cut.stdout + cut.stderr).toBe(0);
    expect((await cli.done).code, cli.output()).toBe(0);
    expect(readEvents(file).at(-1)!['detail-type']).toBe('Task Cut Over');
    await assertSameData(source.url, target.url);
  }, 120_000);

  it('the notifications reader cuts over too: refused while written, then the final repair round, verify and Task Cut Over', async () => {
    // As ElastiCache looks from a client: no PSYNC, KEA set in its parameter group.
    const source = await startManagedRedis(
      { psync: 'disabled' },
      { configLines: ['notify-keyspace-events KEA'] },
    );
    const target = await startRedis();
    await seed(source, [0, 1], 5_000);
    const state = dirs.make();
    const file = join(state, 'events.jsonl');
    const cli = watch(
      startCli(
        syncArgs(source.url, target.url, state, [
          '--incremental-reader',
          'notifications',
          '--events-file',
          file,
        ]),
      ),
    );
    await cli.until('incremental sync from keyspace notifications');
    const writers = startWriters({ url: source.url, dbs: [0, 1], writers: 2, ratePerWriter: 50 });
    const taskId = taskIdOf(source, target);
    const refused = await runCli(['cutover', taskId, '--state-dir', state, '--quiet-timeout', '3s']);
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(/changes kept arriving on the source's keyspace notifications/);
    expect(cli.child.exitCode).toBeNull();
    const stats = await settle(writers);
    for (const kind of ['INCR', 'LPUSH', 'APPEND', 'HINCRBY', 'EXPIRE', 'DEL']) {
      expect(stats.byCommand[kind] ?? 0, kind).toBeGreaterThan(0);
    }
    // Lag here is the age of the oldest key waiting to be copied again.
    const caughtUp = (await eventSeen(file, 'Caught Up')).detail as {
      taskId: string;
      lagMs: number;
      thresholdMs: number;
    };
    expect(caughtUp.taskId).toBe(taskId);
    expect(caughtUp.lagMs).toBeLessThanOrEqual(caughtUp.thresholdMs);
    const cut = await runCli(['cutover', taskId, '--state-dir', state, '--quiet-timeout', '30s']);
    expect(cut.code, cut.stdout + cut.stderr).toBe(0);
    expect(cut.stdout).toContain('verify: consistent');
    const r = await cli.doneWithin(90_000);
    expect(r.code, cli.output()).toBe(0);
    // The round before the cut-over ran, and found the destination equal.
    expect(cli.output()).toContain('the source is quiet: the round before the cut-over');
    const types = readEvents(file).map((e) => e['detail-type']);
    expect(types).toContain('Cut Over Refused');
    expect(types.at(-1)).toBe('Task Cut Over');
    expect(readEvents(file).at(-1)!.detail).toMatchObject({
      taskId,
      verify: { mode: 'full', skipped: false, consistent: true, keysDiffering: 0 },
    });
    await assertSameData(source.url, target.url);
    await assertNoInternalKeys(source.url, target.url);
  }, 180_000);

  it('the RDB reader sends Full Sync Completed too (a full-only task, then Task Succeeded)', async () => {
    const source = await startRedis();
    const target = await startRedis();
    await seed(source, [0, 1], 3_000);
    const state = dirs.make();
    const file = join(state, 'events.jsonl');
    const r = await runCli(
      syncArgs(source.url, target.url, state, [
        '--events-file',
        file,
        '--sync-type',
        'full',
        '--full-sync-reader',
        'rdb',
      ]),
    );
    expect(r.code, r.stderr).toBe(0);
    const events = readEvents(file);
    expect(events.map((e) => e['detail-type'])).toEqual([
      'Task Started',
      'Precheck Passed',
      'Full Sync Completed',
      'Task Succeeded',
    ]);
    expect(events[2]!.detail).toMatchObject({ reader: 'rdb', keys: 6_000 });
    await assertSameData(source.url, target.url);
  }, 60_000);

  it('a task whose destination password is wrong emits Precheck Failed and Task Failed with cause and fix', async () => {
    const source = await startRedis();
    const target = await startRedis({ args: ['--requirepass', 'right-one'], password: 'right-one' });
    await seed(source, [0], 100);
    const state = dirs.make();
    const file = join(state, 'events.jsonl');
    const r = await runCli(
      syncArgs(source.url, `redis://127.0.0.1:${target.port}`, state, [
        '--events-file',
        file,
        '--target-password-env',
        'WRONG_PW',
      ]),
      { WRONG_PW: 'wrong-one' },
    );
    expect(r.code, r.stderr).toBe(1);
    const events = readEvents(file);
    expect(events.map((e) => e['detail-type'])).toEqual(['Task Started', 'Precheck Failed', 'Task Failed']);
    const failed = events[2]!.detail as { code: string; cause: string; fix: string };
    expect(failed.code).toBe('PrecheckFailed');
    expect(failed.cause).toMatch(/^precheck failed: .*(password|auth)/i);
    expect(failed.fix.length).toBeGreaterThan(10);
    expect(JSON.stringify(events)).not.toContain('wrong-one');
  }, 60_000);

  it('a difference made on the destination: Inconsistency Found from the sampled and the final verification', async () => {
    const source = await startRedis(BIG_BACKLOG);
    const target = await startRedis();
    await seed(source, [0], 2_000);
    const state = dirs.make();
    const file = join(state, 'events.jsonl');
    const args = ['--events-file', file, '--verify-every', '1000', '--verify-sample-rate', '1'];
    const cli = watch(startCli(syncArgs(source.url, target.url, state, args)));
    await cli.until('sampled verification: 0 inconsistent of');
    // Behind the sync's back: only verification can see it.
    await target.cli('SET', 'seed:0:7', 'changed on the destination');
    const sampled = await eventSeen(file, 'Inconsistency Found');
    expect(sampled.detail).toMatchObject({ verification: 'sampled', keysDiffering: 1 });
    expect(JSON.stringify(sampled.detail)).toContain('seed:0:7');
    const stop = await runCli(['stop', taskIdOf(source, target), '--state-dir', state]);
    expect(stop.code).toBe(0);
    expect((await cli.done).code, cli.output()).toBe(1);
    const events = readEvents(file);
    const final = events.find(
      (e) =>
        e['detail-type'] === 'Inconsistency Found' &&
        (e.detail as { verification: string }).verification === 'final',
    );
    expect(final?.detail).toMatchObject({ keysDiffering: 1 });
    expect(JSON.stringify(final?.detail)).toContain('seed:0:7');
    expect(events.at(-1)).toMatchObject({ 'detail-type': 'Task Failed', detail: { code: 'VERIFY_FAILED' } });
  }, 120_000);
});

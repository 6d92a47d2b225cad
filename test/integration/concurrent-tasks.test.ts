import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, startCli, syncArgs, watchCli } from '../support/cli.ts';
import { assertSameData } from '../support/compare.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { seedManyKeys } from '../support/seed.ts';
import { startWriters } from '../support/writers.ts';

const dirs: string[] = [];
afterAll(async () => {
  await stopAllRedis();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'redis-dts-concurrent-'));
  dirs.push(dir);
  return dir;
}

const BIG_BACKLOG = { args: ['--repl-backlog-size', '64mb'] };

async function pair(seedPrefix: string): Promise<{ source: RedisProcess; target: RedisProcess }> {
  const [source, target] = await Promise.all([startRedis(BIG_BACKLOG), startRedis()]);
  await seedManyKeys(source.url, { db: 0, count: 5_000, mixed: true, prefix: seedPrefix });
  return { source, target };
}

describe('several local tasks in one state directory', () => {
  it('run side by side under writers, each ends digest-equal, and status, list and stop see both', async () => {
    const dir = stateDir();
    const a = await pair('a:');
    const b = await pair('b:');
    const writersA = startWriters({ url: a.source.url, dbs: [0], writers: 2 });
    const writersB = startWriters({ url: b.source.url, dbs: [0], writers: 2 });
    const runA = watchCli(startCli(syncArgs(a.source.url, a.target.url, dir, ['--task-id', 'task-a'])));
    const runB = watchCli(startCli(syncArgs(b.source.url, b.target.url, dir, ['--task-id', 'task-b'])));
    await Promise.all([
      runA.until('incremental sync: applying changes'),
      runB.until('incremental sync: applying changes'),
    ]);

    // While both run: list shows both, status reads each through the store its run serves.
    const list = await runCli(['list', '--state-dir', dir]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^task-a\trunning\tincremental\t/m);
    expect(list.stdout).toMatch(/^task-b\trunning\tincremental\t/m);
    for (const id of ['task-a', 'task-b']) {
      const status = await runCli(['status', id, '--state-dir', dir]);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toContain(`task     ${id}`);
    }

    // A second run of a running task is refused, naming the run that has it.
    const again = await runCli(syncArgs(a.source.url, a.target.url, dir, ['--task-id', 'task-a']));
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      new RegExp(`error: task 'task-a' is already running from state dir ${dir} \\(pid ${runA.child.pid}\\)`),
    );
    expect(again.stderr).toMatch(/fix: .*redis-dts stop task-a/);

    const stats = await Promise.all([writersA.stop(), writersB.stop()]);
    for (const s of stats) expect(s.ops).toBeGreaterThan(0);
    // Each run is stopped through its own task's store.
    for (const id of ['task-a', 'task-b']) {
      const stop = await runCli(['stop', id, '--state-dir', dir]);
      expect(stop.code, stop.stderr).toBe(0);
    }
    const [doneA, doneB] = await Promise.all([runA.done, runB.done]);
    expect(doneA.code, runA.output()).toBe(0);
    expect(doneB.code, runB.output()).toBe(0);
    await assertSameData(a.source.url, a.target.url);
    await assertSameData(b.source.url, b.target.url);

    const after = await runCli(['list', '--json', '--state-dir', dir]);
    const tasks = JSON.parse(after.stdout) as { taskId: string; updatedAt: string }[];
    expect(tasks.map((t) => t.taskId).sort()).toEqual(['task-a', 'task-b']);
    // `status` without an id shows the task updated last, wherever it is stored.
    const latest = await runCli(['status', '--json', '--state-dir', dir]);
    const shown = (JSON.parse(latest.stdout) as { task: { taskId: string; updatedAt: string } }).task;
    const newest = [...tasks].sort((x, y) => x.updatedAt.localeCompare(y.updatedAt));
    expect(shown.taskId).toBe(newest.at(-1)!.taskId);
  }, 240_000);

  it('says so when a task is not there, and refuses a state dir of the earlier one-store layout', async () => {
    const dir = stateDir();
    const missing = await runCli(['status', 'nope', '--state-dir', dir]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`error: no task 'nope' in state dir ${dir}`);
    expect((await runCli(['list', '--state-dir', dir])).stdout).toBe('no tasks\n');

    mkdirSync(join(dir, 'dynamodb'));
    const old = await runCli(['list', '--state-dir', dir]);
    expect(old.code).toBe(1);
    expect(old.stderr).toContain(`keeps every task in one store (${join(dir, 'dynamodb')})`);
    expect(old.stderr).toMatch(/fix: finish its tasks with the redis-dts that started them/);
  });
});

import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { captureStartStep } from '../../lib/orchestration/capture-start-step.ts';
import { validateStep } from '../../lib/orchestration/validate-step.ts';
import { createDynamoClient } from '../../lib/state/dynamo-client.ts';
import { type EmbeddedDynamo, startEmbeddedDynamo } from '../../lib/state/embedded-dynamo.ts';
import { type ShardCheckpoint, TaskStore } from '../../lib/state/task-store.ts';
import { parseTaskSpec } from '../../lib/task/spec.ts';
import { assertSameData } from '../support/compare.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { startWriters } from '../support/writers.ts';

/** The Fargate container's entry, run the way ECS runs it: its own process, configured by env only. */
const ENTRY = fileURLToPath(new URL('../../functions/replicator/main.ts', import.meta.url));
const TABLE = 'redis-dts-replicator-entry-test';
/** Writers run at full speed while the replicator may still be starting: keep all of it in the backlog. */
const BIG_BACKLOG = { args: ['--repl-backlog-size', '64mb'] };
const TEST_TIMEOUT_MS = 60_000;
const WAIT_MS = 30_000;

let dynamo: EmbeddedDynamo;
let client: DynamoDBClient;
let store: TaskStore;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  dynamo = await startEmbeddedDynamo();
  client = createDynamoClient({ endpoint: dynamo.endpoint });
  store = new TaskStore(client, TABLE);
  await store.ensureTable();
});

afterEach(() => {
  // A failed test must not leave a replicator streaming into the next one.
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
});

afterAll(async () => {
  await stopAllRedis();
  client?.destroy();
  await dynamo?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Replicator {
  child: ChildProcess;
  /** Resolves once stdout contains the text; rejects if the process exits first. */
  until(text: string): Promise<void>;
  stdout(): string;
  output(): string;
  exit: Promise<Exit>;
}

/** Only the variables the stack gives the container (and PATH), so nothing leaks in from the test's env. */
function startReplicator(taskId: string): Replicator {
  const child = spawn(process.execPath, [ENTRY], {
    env: {
      PATH: process.env.PATH ?? '',
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'x',
      AWS_SECRET_ACCESS_KEY: 'x',
      TABLE_NAME: TABLE,
      REDIS_DTS_TASK_ID: taskId,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const w of [...waiters]) {
      if (stdout.includes(w.text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exit = new Promise<Exit>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const output = () => `stdout:\n${stdout}\nstderr:\n${stderr}`;
  return {
    child,
    until: (text) =>
      stdout.includes(text)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            waiters.push({ text, resolve });
            exit.then((r) =>
              reject(
                new Error(`the replicator exited (${r.code ?? r.signal}) before '${text}':\n${output()}`),
              ),
            );
          }),
    stdout: () => stdout,
    output,
    exit,
  };
}

type LogLine = Record<string, unknown> & { level: string; message: string };

/** Every stdout line is one JSON object (CloudWatch Logs Insights reads them so): an EMF metrics record, or a log line. */
function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The log lines (not the EMF metrics records). */
function logLines(stdout: string): LogLine[] {
  return jsonLines(stdout)
    .filter((l) => !('_aws' in l))
    .map((l) => {
      expect(typeof l.level, JSON.stringify(l)).toBe('string');
      expect(typeof l.message, JSON.stringify(l)).toBe('string');
      return l as LogLine;
    });
}

/** CloudWatch EMF records: metric names they define, with their values. */
function emfMetrics(stdout: string): Record<string, unknown>[] {
  return jsonLines(stdout).filter((l) => '_aws' in l);
}

/** A task as the stack's Validate state leaves it: spec stored, incremental phase, no unit checkpoints. */
async function createTask(source: RedisProcess, target: RedisProcess): Promise<string> {
  const taskId = `entry-${randomUUID()}`;
  const now = new Date().toISOString();
  const spec = {
    source: { url: source.url },
    target: { url: target.url },
    syncType: 'incremental',
    existingKeys: 'overwrite',
  };
  await store.putTask({
    taskId,
    name: taskId,
    spec,
    status: 'running',
    phase: 'incremental',
    createdAt: now,
    updatedAt: now,
  });
  await captureStartStep({ taskId, spec: parseTaskSpec(spec, { mode: 'aws' }) }, { store });
  return taskId;
}

/**
 * Stopping is immediate (it does not drain the stream), so before stopping, a key written last on the
 * source must have reached the target: the stream is applied in order, so everything before it has too.
 */
async function waitUntilApplied(source: RedisProcess, target: RedisProcess): Promise<void> {
  const sentinel = `sentinel:${randomUUID()}`;
  await source.cli('SET', sentinel, '1');
  const deadline = Date.now() + WAIT_MS;
  while ((await target.cli('EXISTS', sentinel)) !== '1') {
    if (Date.now() > deadline) throw new Error(`${sentinel} did not reach the target within ${WAIT_MS} ms`);
    await sleep(50);
  }
}

async function writeFor(source: RedisProcess, ms: number): Promise<void> {
  const writers = startWriters({ url: source.url, dbs: [0, 1] });
  await sleep(ms);
  const stats = await writers.stop();
  expect(stats.ops).toBeGreaterThan(0);
  // Short-lived keys expire on the source, and the DELs that propagate reach the target.
  await sleep(1000);
}

/**
 * A stopped run: exit 0, JSON lines only, the end logged, and the shard checkpoint moved past the captured
 * start to where the destination's marker says. The marker stays on purpose (a retried container resumes
 * from it; the Cleanup state removes it), so it is removed here before the data is compared.
 */
async function expectCleanStop(
  replicator: Replicator,
  source: RedisProcess,
  target: RedisProcess,
  taskId: string,
  started: ShardCheckpoint | undefined,
): Promise<void> {
  const exit = await replicator.exit;
  expect(exit, replicator.output()).toEqual({ code: 0, signal: null });
  const lines = logLines(replicator.stdout());
  expect(lines.some((l) => /incremental sync ended \(stopped\)/.test(l.message))).toBe(true);
  expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  // The last figures went out as CloudWatch metrics (EMF) before the exit.
  const emf = emfMetrics(replicator.stdout());
  expect(emf.length).toBeGreaterThan(0);
  // The start is counted (restarts show on the dashboard), with the task dimension every task metric has.
  expect(emf[0]).toMatchObject({ task: taskId, service: 'redis-dts-replicator', ReplicatorStarts: 1 });
  const last = emf.at(-1)!;
  expect(last).toMatchObject({ task: taskId, OpsPerSecond: expect.any(Number) });
  expect(last.CommandsApplied).toBeGreaterThan(0);
  const shard = (await store.getShard(taskId, '0'))?.value;
  expect(shard?.phase).toBe('stopped');
  expect(shard?.appliedOffset).toBeGreaterThan(started?.appliedOffset ?? Number.POSITIVE_INFINITY);
  const marker = `redis-dts:marker:${taskId}:0`;
  expect(await target.cli('-n', '0', 'GET', marker)).toMatch(
    new RegExp(`^${shard?.replid}:${shard?.appliedOffset}:\\d*$`),
  );
  await target.cli('-n', '0', 'DEL', marker, `${marker}:skip`);
  await assertSameData(source.url, target.url);
}

describe('the replicator container entry (functions/replicator/main.ts)', () => {
  it(
    'replicates until the stop flag, then exits 0',
    async () => {
      const source = await startRedis(BIG_BACKLOG);
      const target = await startRedis();
      const taskId = await createTask(source, target);
      const started = (await store.getShard(taskId, '0'))?.value;
      expect(started).toBeDefined();

      const replicator = startReplicator(taskId);
      await replicator.until('incremental sync: applying changes');
      await writeFor(source, 2000);
      await waitUntilApplied(source, target);
      await store.requestStop(taskId);

      await expectCleanStop(replicator, source, target, taskId, started);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'SIGTERM (ECS StopTask) ends it cleanly with exit 0',
    async () => {
      const source = await startRedis(BIG_BACKLOG);
      const target = await startRedis();
      const taskId = await createTask(source, target);
      const started = (await store.getShard(taskId, '0'))?.value;

      const replicator = startReplicator(taskId);
      await replicator.until('incremental sync: applying changes');
      await writeFor(source, 1000);
      await waitUntilApplied(source, target);
      replicator.child.kill('SIGTERM');

      await expectCleanStop(replicator, source, target, taskId, started);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'a task missing from the table exits 1 with a JSON error line',
    async () => {
      const taskId = `missing-${randomUUID()}`;
      const replicator = startReplicator(taskId);

      const exit = await replicator.exit;
      expect(exit.code, replicator.output()).toBe(1);
      const errors = logLines(replicator.stdout()).filter((l) => l.level === 'error');
      expect(errors).toHaveLength(1);
      expect(errors[0]?.message).toContain(taskId);
      expect(errors[0]?.message).toContain(TABLE);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'a lost backlog exits 1 naming repl-backlog-size',
    async () => {
      const source = await startRedis({ args: ['--repl-backlog-size', '16kb'] });
      const target = await startRedis();
      const taskId = await createTask(source, target);
      // About 1 MB of writes after the captured start: far more than the 16 KB backlog keeps.
      const writer = new Redis(source.url);
      try {
        const value = 'x'.repeat(1024);
        const pipeline = writer.pipeline();
        for (let i = 0; i < 2000; i++) pipeline.set(`filler:${i}`, value);
        await pipeline.exec();
      } finally {
        writer.disconnect();
      }

      const replicator = startReplicator(taskId);
      const exit = await replicator.exit;
      expect(exit.code, replicator.output()).toBe(1);
      const errors = logLines(replicator.stdout()).filter((l) => l.level === 'error');
      expect(errors, replicator.output()).toHaveLength(1);
      expect(errors[0]?.code).toBe('BACKLOG_LOST');
      expect(errors[0]?.fix).toMatch(/repl-backlog-size/);
      expect((await store.getShard(taskId, '0'))?.value.phase).toBe('captured');
    },
    TEST_TIMEOUT_MS,
  );
  it(
    'a permanent failure is recorded: the retries of the same run end at once with it, a new start clears it',
    async () => {
      const source = await startRedis({ args: ['--repl-backlog-size', '16kb'] });
      const target = await startRedis();
      const taskId = await createTask(source, target);
      const writer = new Redis(source.url);
      try {
        const pipeline = writer.pipeline();
        for (let i = 0; i < 2000; i++) pipeline.set(`filler:${i}`, 'x'.repeat(1024));
        await pipeline.exec();
      } finally {
        writer.disconnect();
      }
      const first = startReplicator(taskId);
      expect((await first.exit).code, first.output()).toBe(1);
      expect((await store.getTask(taskId))?.value.replicatorVerdict?.code).toBe('BACKLOG_LOST');

      // The state machine's retry: the same container again. It must not touch either side.
      const connections = async (r: RedisProcess) =>
        Number(/total_connections_received:(\d+)/.exec(await r.cli('INFO', 'stats'))![1]);
      const before = [await connections(source), await connections(target)];
      const retry = startReplicator(taskId);
      expect((await retry.exit).code, retry.output()).toBe(1);
      const errors = logLines(retry.stdout()).filter((l) => l.level === 'error');
      expect(errors, retry.output()).toHaveLength(1);
      expect(errors[0]?.code).toBe('BACKLOG_LOST');
      expect(errors[0]?.message).toMatch(/an earlier attempt of this run failed .* would fail again/);
      expect(errors[0]?.fix).toMatch(/repl-backlog-size/);
      // Each INFO above is one connection of its own.
      expect([await connections(source), await connections(target)]).toEqual([
        before[0]! + 1,
        before[1]! + 1,
      ]);

      // Started again (Validate): the verdict is gone, so the next replicator tries for itself.
      const task = await store.getTask(taskId);
      await validateStep({ ...task!.value.spec, taskId }, { store, mode: 'aws' });
      expect((await store.getTask(taskId))?.value.replicatorVerdict).toBeUndefined();
    },
    TEST_TIMEOUT_MS,
  );
});

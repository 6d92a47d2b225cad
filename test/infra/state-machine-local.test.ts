import { randomBytes } from 'node:crypto';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { Template } from 'aws-cdk-lib/assertions';
import { StateMachine } from 'aws-local-stepfunctions';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localExecutionContext, localTaskHandlers } from '../../lib/orchestration/local-handlers.ts';
import type { CopyChunkInput } from '../../lib/orchestration/step-types.ts';
import { createDynamoClient, type LocalStore, openLocalStore } from '../../lib/state/dynamo-client.ts';
import { assertSameKeys } from '../support/cluster-compare.ts';
import { assertSameData, keyCounts } from '../support/compare.ts';
import { startRedisCluster } from '../support/redis-cluster.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { seedEveryType } from '../support/seed.ts';
import { type Definition, definitionOf, type StateJson, synthTestStack } from './synth-stack.ts';

/**
 * The synthesized definition, executed by aws-local-stepfunctions with every Task state mapped to its
 * step in-process, against real redis-server processes and dynalite.
 */
describe('the synthesized state machine, run locally', () => {
  let definition: Definition;
  let source: RedisProcess;
  let target: RedisProcess;
  let local: LocalStore;

  beforeAll(async () => {
    definition = definitionOf(Template.fromStack(synthTestStack().stack).toJSON());
    source = await startRedis();
    target = await startRedis();
    await seedEveryType(source.url);
    local = await openLocalStore();
  });

  afterAll(async () => {
    await local?.close();
    await stopAllRedis();
  });

  const spec = () => ({
    taskId: 'local-machine',
    source: { url: source.url },
    target: { url: target.url },
    syncType: 'full',
    verify: { mode: 'off' },
    // The scan reader's CopyChunk loop (auto, the default, would take the RDB in RunReplicator).
    fullSync: { chunkKeys: 10, reader: 'scan' },
  });

  function run(input: unknown, o: { copyChunkMs?: (e: CopyChunkInput) => number; windowMs?: number } = {}) {
    const continued: unknown[] = [];
    const machine = new StateMachine(definition as never);
    const execution = machine.run(input as never, {
      context: localExecutionContext(input, 'test') as never,
      overrides: {
        taskResourceLocalHandlers: localTaskHandlers({
          store: local.store,
          copyChunkMs: o.copyChunkMs,
          windowMs: o.windowMs,
          onContinue: (next) => {
            continued.push(next);
          },
        }) as never,
      },
    });
    return { result: execution.result, continued, events: execution.eventLogs };
  }

  it('maps every Task state of the definition to a local step', () => {
    const handlers = localTaskHandlers({ store: local.store, onContinue: () => undefined });
    const tasks = taskStates(definition).sort();
    expect(tasks.length).toBeGreaterThan(10);
    expect(tasks.filter((t) => !(t in handlers))).toEqual([]);
  });

  it('fails the task with the precheck report when the precheck fails', async () => {
    // existingKeys block with a key on the target: the existing-keys check fails.
    await target.cli('SET', 'already:here', '1');
    try {
      const { result } = await run({ spec: { ...spec(), taskId: 'blocked' } });
      await expect(result).rejects.toMatchObject({
        cause: { name: 'PrecheckFailed', message: expect.stringContaining('already:here') },
      });
    } finally {
      await target.cli('DEL', 'already:here');
    }
    const task = await local.store.getTask('blocked');
    expect(task?.value.status).toBe('failed');
    expect(task?.value.lastError?.code).toBe('PrecheckFailed');
    expect(await local.store.listCheckpoints('blocked')).toEqual([]);
  });

  it('runs a full-only task through every state, in CopyChunk loops, to Succeed with equal data', async () => {
    // The first CopyChunk of each unit gets no time at all, so every unit's loop takes at least two turns.
    let turns = 0;
    const { result, continued } = await run(
      { spec: { ...spec(), acknowledgeWarnings: true, verify: { mode: 'full' } } },
      {
        copyChunkMs: (e) => {
          turns++;
          return e.progress === undefined ? -1 : 10 * 60_000;
        },
      },
    );
    const output = (await result) as {
      cleanup: { keysWritten: number };
      verify: { skipped: boolean; keysCompared: number };
    };
    expect(continued).toEqual([]);
    await assertSameData(source.url, target.url);
    const counts = await keyCounts(source.url);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    expect(output.cleanup.keysWritten).toBe(total);
    expect(output.verify).toMatchObject({ skipped: false, keysCompared: total });
    const task = await local.store.getTask('local-machine');
    expect(task?.value.status).toBe('succeeded');
    expect(task?.value.lastError).toBeUndefined();
    const units = await local.store.listCheckpoints('local-machine');
    expect(units.map((u) => u.value.done)).toEqual(units.map(() => true));
    expect(units.every((u) => u.value.keysWritten > 0)).toBe(true);
    expect(turns).toBeGreaterThanOrEqual(2 * units.length);
  });

  it('runs incremental sync in Lambda mode as a loop of windows, each resuming from the marker', async () => {
    // Writes go on until a window has ended at its deadline (its shard checkpoint says so), so the loop
    // must run at least two windows, whatever the machine's speed.
    const writes = (async () => {
      for (let i = 0; ; i++) {
        await source.cli('INCR', 'lambda:counter');
        await source.cli('LPUSH', 'lambda:list', String(i));
        if (i % 20 === 0 && (await local.store.getShard('incremental', '0'))?.value.phase === 'deadline')
          return;
      }
    })();
    const { result } = await run(
      {
        spec: {
          ...spec(),
          taskId: 'incremental',
          syncType: 'full+incremental',
          existingKeys: 'overwrite',
          acknowledgeWarnings: true,
          incremental: { mode: 'lambda', until: 'caught-up' },
        },
      },
      { windowMs: 1500 },
    );
    const output = (await result) as { window: { iteration: number; stopped: boolean } };
    await writes;
    // Windows ended at their deadline while the writes went on; the last one saw the source quiet.
    expect(output.window.iteration).toBeGreaterThanOrEqual(2);
    expect(output.window.stopped).toBe(true);
    await assertSameData(source.url, target.url);
    const task = await local.store.getTask('incremental');
    expect(task?.value.status).toBe('succeeded');
    const shard = await local.store.getShard('incremental', '0');
    expect(shard?.value.phase).toBe('caught-up');
  });

  it('Lambda windows from a 3-master cluster into a 2-master cluster: every shard resumes from its markers', async () => {
    const src = await startRedisCluster({ masters: 3, args: ['--repl-backlog-size', '64mb'] });
    const dst = await startRedisCluster({ masters: 2 });
    const writer = new Cluster([{ host: src.masters[0]!.host, port: src.masters[0]!.port }]);
    try {
      for (let i = 0; i < 300; i++) await writer.set(`before:${i}`, String(i));
      const writes = (async () => {
        for (let i = 0; ; i++) {
          await writer.incr(`lambda:counter:${i % 50}`);
          await writer.lpush(`lambda:list:${i % 50}`, String(i));
          if (i % 20 !== 0) continue;
          const shards = await local.store.listShards('incr-cluster');
          if (shards.some((s) => s.value.phase === 'deadline')) return;
        }
      })();
      const { result } = await run(
        {
          spec: {
            ...spec(),
            taskId: 'incr-cluster',
            source: { url: src.url },
            target: { url: dst.url },
            dbs: [0],
            syncType: 'full+incremental',
            acknowledgeWarnings: true,
            incremental: { mode: 'lambda', until: 'caught-up' },
          },
        },
        { windowMs: 1500 },
      );
      const output = (await result) as { window: { iteration: number; stopped: boolean } };
      await writes;
      expect(output.window.iteration).toBeGreaterThanOrEqual(2);
      const shards = await local.store.listShards('incr-cluster');
      expect(shards.map((s) => s.value.phase)).toEqual(['caught-up', 'caught-up', 'caught-up']);
      expect(
        await assertSameKeys(
          src.masters.map((m) => m.url),
          dst.masters.map((m) => m.url),
        ),
      ).toBeGreaterThan(300);
    } finally {
      writer.disconnect();
      await Promise.all([src.stop(), dst.stop()]);
    }
  });

  it('full+incremental with passwords: no password in any execution history event or DynamoDB item', async () => {
    const sourcePw = `src-${randomBytes(8).toString('hex')}`;
    const targetPw = `dst-${randomBytes(8).toString('hex')}`;
    const src = await startRedis({ args: ['--requirepass', sourcePw], password: sourcePw });
    const dst = await startRedis({ args: ['--requirepass', targetPw], password: targetPw });
    process.env.DTS_TEST_SOURCE_PW = sourcePw;
    process.env.DTS_TEST_TARGET_PW = targetPw;
    try {
      await seedEveryType(src.url);
      const { result, events } = run({
        spec: {
          taskId: 'secret-history',
          source: { url: `redis://127.0.0.1:${src.port}`, passwordEnv: 'DTS_TEST_SOURCE_PW' },
          target: { url: `redis://127.0.0.1:${dst.port}`, passwordEnv: 'DTS_TEST_TARGET_PW' },
          acknowledgeWarnings: true,
          incremental: { until: 'caught-up' },
        },
      });
      const history: unknown[] = [];
      const collected = (async () => {
        for await (const e of events) history.push(e);
      })();
      await src.cli('INCR', 'after:start');
      await result;
      await collected;
      await assertSameData(src.url, dst.url);
      // The replicator ran (RunReplicator, the Fargate state, in-process) and the task ended cleanly.
      expect(JSON.stringify(history)).toContain('RunReplicator');
      expect((await local.store.getTask('secret-history'))?.value.status).toBe('succeeded');
      const items = await createDynamoClient({ endpoint: local.endpoint }).send(
        new ScanCommand({ TableName: local.store.tableName }),
      );
      for (const text of [JSON.stringify(history), JSON.stringify(items.Items)]) {
        expect(text).not.toContain(sourcePw);
        expect(text).not.toContain(targetPw);
      }
    } finally {
      delete process.env.DTS_TEST_SOURCE_PW;
      delete process.env.DTS_TEST_TARGET_PW;
      await Promise.all([src.stop(), dst.stop()]);
    }
  });

  it('copies a key larger than the destination accepts in one RESTORE in parts', async () => {
    const bigSource = await startRedis();
    const smallTarget = await startRedis({ args: ['--proto-max-bulk-len', '1mb'] });
    try {
      // About 2 MB of incompressible fields: its DUMP is over the destination's 1 MB limit.
      const fields: string[] = [];
      for (let i = 0; i < 2000; i++) fields.push(`f${i}`, randomBytes(500).toString('hex'));
      await bigSource.cli('HSET', 'big:hash', ...fields);
      await bigSource.cli('SET', 'small', 'v');
      const { result } = await run({
        spec: {
          ...spec(),
          taskId: 'big-key',
          source: { url: bigSource.url },
          target: { url: smallTarget.url },
          acknowledgeWarnings: true,
          verify: { mode: 'full' },
        },
      });
      await result;
      await assertSameData(bigSource.url, smallTarget.url);
      const [unit] = (await local.store.listCheckpoints('big-key')).map((c) => c.value);
      expect(unit).toMatchObject({ done: true, keysInParts: 1, keysFailed: 0, keysWritten: 2 });
    } finally {
      await Promise.all([bigSource.stop(), smallTarget.stop()]);
    }
  });

  it('a stop request ends the task as stopped, not failed', async () => {
    const now = new Date().toISOString();
    await local.store.putTask({
      taskId: 'stopping',
      name: 'stopping',
      spec: { ...spec(), taskId: 'stopping', existingKeys: 'overwrite' },
      status: 'running',
      phase: 'full-sync',
      createdAt: now,
      updatedAt: now,
    });
    await local.store.requestStop('stopping');
    const { result } = await run({ resume: { taskId: 'stopping', phase: 'fullsync' } });
    await expect(result).rejects.toMatchObject({ cause: { name: 'DtsError.TASK_STOPPED' } });
    const task = await local.store.getTask('stopping');
    expect(task?.value.status).toBe('stopped');
    expect(task?.value.lastError?.code).toBe('TASK_STOPPED');
  });

  it('continues as a new execution when a unit reaches its iteration bound', async () => {
    // A second task whose CopyChunk turns copy nothing, with PlanUnits' bound forced to one turn per
    // unit: the machine must hand the task to a new execution instead of looping on.
    const bounded = structuredClone(definition);
    const selector = bounded.States.FullSync!.ItemSelector as Record<string, unknown>;
    expect(selector['maxIterations.$']).toBe('$.plan.maxIterations');
    delete selector['maxIterations.$'];
    selector.maxIterations = 1;
    const now = new Date().toISOString();
    await local.store.putTask({
      taskId: 'bounded',
      name: 'bounded',
      spec: { ...spec(), taskId: 'bounded', existingKeys: 'overwrite' },
      status: 'running',
      phase: 'validate',
      createdAt: now,
      updatedAt: now,
    });
    const continued: unknown[] = [];
    const input = { resume: { taskId: 'bounded', phase: 'fullsync' } };
    const execution = new StateMachine(bounded as never).run(input, {
      context: localExecutionContext(input, 'bounded') as never,
      overrides: {
        taskResourceLocalHandlers: localTaskHandlers({
          store: local.store,
          copyChunkMs: () => -1,
          onContinue: (next) => {
            continued.push(next);
          },
        }) as never,
      },
    });
    await execution.result;
    expect(continued).toEqual([{ resume: { taskId: 'bounded', phase: 'fullsync' } }]);
    const units = await local.store.listCheckpoints('bounded');
    expect(units.length).toBeGreaterThan(0);
    expect(units.filter((u) => u.value.done)).toEqual([]);
  });
});

function taskStates(d: Definition): string[] {
  return Object.entries(d.States).flatMap(([name, s]: [string, StateJson]) => [
    ...(s.Type === 'Task' ? [name] : []),
    ...(s.ItemProcessor ? taskStates(s.ItemProcessor) : []),
  ]);
}

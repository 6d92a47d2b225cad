import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthTaskDefinition } from '../../infra/definition-json.ts';
import { runTaskMachine } from '../../lib/orchestration/run-task-machine.ts';
import { type LocalStore, openLocalStore } from '../../lib/state/dynamo-client.ts';
import { assertSameData } from '../support/compare.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { seedManyKeys } from '../support/seed.ts';

describe('runTaskMachine over the definition synthesized in-process', () => {
  let source: RedisProcess;
  let target: RedisProcess;
  let local: LocalStore;

  beforeAll(async () => {
    [source, target] = await Promise.all([startRedis(), startRedis()]);
    await seedManyKeys(source.url, { count: 500, mixed: true });
    await seedManyKeys(source.url, { db: 3, count: 200 });
    local = await openLocalStore();
  });

  afterAll(async () => {
    await local?.close();
    await stopAllRedis();
  });

  it('follows continue-as-new hand-overs until the task succeeds', async () => {
    const definition = synthTaskDefinition();
    // One CopyChunk turn per unit per execution, and the first execution's turns copy nothing: the
    // task must continue in a second execution, which finishes it.
    const selector = definition.States.FullSync!.ItemSelector as Record<string, unknown>;
    delete selector['maxIterations.$'];
    selector.maxIterations = 1;
    let execution = 0;
    const inputs: unknown[] = [];
    const { output, executions } = await runTaskMachine(
      definition,
      {
        taskId: 'runner',
        source: { url: source.url },
        target: { url: target.url },
        syncType: 'full',
        acknowledgeWarnings: true,
        fullSync: { chunkKeys: 50, reader: 'scan' },
      },
      {
        store: local.store,
        copyChunkMs: () => (execution === 0 ? -1 : 10 * 60_000),
        onExecution: (i, input) => {
          execution = i;
          inputs.push(input);
        },
      },
    );
    expect(executions).toBe(2);
    expect(inputs[1]).toEqual({ resume: { taskId: 'runner', phase: 'fullsync' } });
    expect(output).toMatchObject({
      cleanup: { keysWritten: 700 },
      verify: { skipped: false, keysCompared: 700 },
    });
    await assertSameData(source.url, target.url);
    expect((await local.store.getTask('runner'))?.value.status).toBe('succeeded');
  });

  it('ends an execution of a bad spec with its problems, one per line, as the failure cause', async () => {
    const definition = synthTaskDefinition();
    const tasksBefore = (await local.store.listTasks()).length;
    const failure = await runTaskMachine(
      definition,
      { source: { url: 'redis://127.0.0.1:notaport' }, target: {}, syncType: 'fulll' },
      { store: local.store },
    ).then(
      () => undefined,
      // The Fail state's error and cause, as aws-local-stepfunctions' ExecutionError carries them.
      (e: { cause?: { name?: string; message?: string } }) => e.cause,
    );
    expect(failure?.name).toBe('DtsError.BAD_TASK_SPEC');
    const lines = failure?.message?.split('\n') ?? [];
    expect(lines[0]).toBe('invalid task spec (3 problems):');
    expect(lines.slice(1).map((l) => l.trim().split(':')[0])).toEqual(['source.url', 'target', 'syncType']);
    expect(failure?.message).toMatch(/\. Fix: see schema\/task-spec\.schema\.json/);
    // Nothing was recorded for it.
    expect((await local.store.listTasks()).length).toBe(tasksBefore);
  });
});

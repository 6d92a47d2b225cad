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
        fullSync: { chunkKeys: 50 },
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
});

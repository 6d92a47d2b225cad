import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler as planUnits } from '../../functions/plan-units/handler.ts';
import type { StepContext } from '../../functions/shared/step-handler.ts';
import { handler as validate } from '../../functions/validate/handler.ts';
import { cutOverFromEvent } from '../../lib/orchestration/cut-over-event.ts';
import { describeCaught } from '../../lib/orchestration/record-failure-step.ts';
import { validateStep } from '../../lib/orchestration/validate-step.ts';
import { type LocalStore, openLocalStore } from '../../lib/state/dynamo-client.ts';

const SECRET = 'hunter2-do-not-leak';
const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:redis-dts/source-AbCdEf';

/** The Lambda context fields Powertools reads; the handlers themselves only ask for the remaining time. */
function lambdaContext(): StepContext {
  const ctx: Partial<Context> = {
    functionName: 'test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:test',
    memoryLimitInMB: '128',
    awsRequestId: 'req-1',
    logGroupName: '/aws/lambda/test',
    logStreamName: 'stream',
    getRemainingTimeInMillis: () => 60_000,
  };
  return ctx as StepContext;
}

describe('step handlers refuse passwords in their input (AWS mode)', () => {
  beforeAll(() => {
    process.env.TABLE_NAME = 'redis-dts-test-unused';
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  });

  it('Validate refuses a spec with a plain password before touching the table', async () => {
    const input = {
      source: { url: 'redis://10.0.0.5:6379', password: SECRET },
      target: { url: 'redis://10.0.0.6' },
    };
    // The table does not exist: a refusal that touched it would fail instead of returning.
    const result = await validate({ input }, lambdaContext());
    if (!('refused' in result)) throw new Error(`expected a refusal, got ${JSON.stringify(result)}`);
    const { error, cause } = result.refused;
    expect(error).toBe('DtsError.BAD_TASK_SPEC');
    expect(cause).toContain('source.password: passwords must come from Secrets Manager on AWS');
    expect(cause).toContain('Fix: ');
    expect(cause).not.toContain(SECRET);
    // The failure as the SpecRefused state leaves it: the code and message without the password.
    const caught = describeCaught({ Error: error, Cause: cause });
    expect(caught.code).toBe('BAD_TASK_SPEC');
    expect(caught.fix.length).toBeGreaterThan(0);
  });

  it('a later step rejects a password in a URL even if one got past Validate', async () => {
    const spec = {
      source: { url: `redis://u:${SECRET}@10.0.0.5:6379` },
      target: { url: 'redis://10.0.0.6' },
    };
    const err = await planUnits({ taskId: 't', spec } as never, lambdaContext()).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.name).toBe('DtsError.BAD_TASK_SPEC');
    expect(err?.message).toContain('source.url');
    expect(err?.message).not.toContain(SECRET);
  });
});

describe('validateStep', () => {
  let local: LocalStore;
  beforeAll(async () => {
    local = await openLocalStore();
  });
  afterAll(async () => {
    await local.close();
  });

  it('keeps secret ARNs, never values, in the task state and the stored task', async () => {
    const state = await validateStep(
      {
        spec: {
          taskId: 'arn-task',
          source: { url: 'redis://10.0.0.5:6379', passwordSecretArn: ARN },
          target: { host: '10.0.0.6' },
          syncType: 'full',
        },
      },
      { store: local.store, mode: 'aws' },
    );
    expect(state).toMatchObject({ taskId: 'arn-task', syncType: 'full', resumeAt: 'start' });
    if ('refused' in state) throw new Error(`refused: ${state.refused.cause}`);
    expect(state.spec.source.passwordSecretArn).toBe(ARN);
    const stored = await local.store.getTask('arn-task');
    expect(stored?.value.status).toBe('running');
    expect(stored?.value.spec).toMatchObject({ source: { passwordSecretArn: ARN } });
  });

  it('drops a local plain password from the stored task', async () => {
    await validateStep(
      {
        taskId: 'local-pw',
        source: { url: 'redis://127.0.0.1:1', password: SECRET },
        target: { url: 'redis://127.0.0.1:2' },
      },
      { store: local.store, mode: 'local' },
    );
    const stored = await local.store.getTask('local-pw');
    expect(JSON.stringify(stored?.value)).not.toContain(SECRET);
  });

  it('a continuation reloads the stored spec and carries only the task id and phase', async () => {
    const state = await validateStep(
      { resume: { taskId: 'arn-task', phase: 'fullsync' } },
      { store: local.store, mode: 'aws' },
    );
    expect(state).toMatchObject({ taskId: 'arn-task', resumeAt: 'fullsync', syncType: 'full' });
    await expect(
      validateStep(
        { resume: { taskId: 'no-such-task', phase: 'fullsync' } },
        { store: local.store, mode: 'aws' },
      ),
    ).rejects.toMatchObject({ code: 'TASK_NOT_FOUND' });
  });
});

describe('the Cut Over Task event (the rule target core: cutOverFromEvent)', () => {
  let local: LocalStore;
  beforeAll(async () => {
    local = await openLocalStore();
  });
  afterAll(async () => {
    await local.close();
  });

  const putTask = (taskId: string, syncType: string, phase: string) =>
    local.store.putTask({
      taskId,
      name: taskId,
      spec: { taskId, source: { url: 'redis://10.0.0.5:6379' }, target: { host: '10.0.0.6' }, syncType },
      status: 'running',
      phase,
      createdAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
    });

  it('sets the same cut-over request as redis-dts cutover --table', async () => {
    await putTask('inc-task', 'full+incremental', 'incremental');
    await cutOverFromEvent({ taskId: 'inc-task', quietTimeoutMs: 90_000 }, { store: local.store });
    expect((await local.store.getCutOver('inc-task'))?.value).toMatchObject({
      state: 'requested',
      quietTimeoutMs: 90_000,
    });
  });

  it('refuses a bad detail, a full-only task and one still in its full sync, with the reason', async () => {
    await expect(cutOverFromEvent({ task: 'x' }, { store: local.store })).rejects.toMatchObject({
      code: 'BAD_CUT_OVER_EVENT',
    });
    await putTask('full-task', 'full', 'full-sync');
    await expect(cutOverFromEvent({ taskId: 'full-task' }, { store: local.store })).rejects.toMatchObject({
      code: 'CUT_OVER_REFUSED',
      message: "task 'full-task' cannot cut over: it is a full sync only, which ends by itself",
    });
    await putTask('copying', 'full+incremental', 'full-sync');
    await expect(cutOverFromEvent({ taskId: 'copying' }, { store: local.store })).rejects.toMatchObject({
      code: 'CUT_OVER_REFUSED',
      message: expect.stringContaining('it is in phase full-sync'),
    });
    expect(await local.store.getCutOver('copying')).toBeUndefined();
  });
});

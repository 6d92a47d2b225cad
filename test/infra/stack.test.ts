import { Match, Template } from 'aws-cdk-lib/assertions';
import type { Stack } from 'aws-cdk-lib/core';
import { StateMachine as LocalStateMachine } from 'aws-local-stepfunctions';
import { beforeAll, describe, expect, test } from 'vitest';
import { CUT_OVER_EVENT, LAMBDA_BASELINE_MIB, START_EVENT, TABLE_ACTIONS } from '../../infra/redis-dts.ts';
import { REPLICATOR_TASK_ENV } from '../../infra/replicator-run-task.ts';
import { EVENT_BUS_ENV } from '../../lib/events/eventbridge-sink.ts';
import { loadTaskDefinition } from '../../lib/orchestration/task-definition.ts';
import { type Definition, definitionOf, SOURCE_SECRET_ARN, synthTestStack } from './synth-stack.ts';

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;
type Statement = { Action: string | string[]; Resource: unknown; Effect: string; Condition?: unknown };

let template: Template;
let resources: Resources;
let definition: Definition;
let built: ReturnType<typeof synthTestStack>;

// One synth for the file, with cdk-nag registered: Template.fromStack fails on any unacknowledged finding.
beforeAll(() => {
  built = synthTestStack({ nag: true });
  template = Template.fromStack(built.stack);
  resources = template.toJSON().Resources as Resources;
  definition = definitionOf(template.toJSON());
});

const logicalId = (c: { node: { defaultChild?: unknown } }) =>
  built.stack.getLogicalId(c.node.defaultChild as Parameters<Stack['getLogicalId']>[0]);

function statementsOf(roleLogicalId: string): Statement[] {
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy')
    .filter((r) => JSON.stringify(r.Properties.Roles).includes(`"${roleLogicalId}"`))
    .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
}

const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

describe('task table', () => {
  test('on-demand, point-in-time recovery, encrypted, keys pk/sk as the task store uses', () => {
    template.resourceCountIs('AWS::DynamoDB::GlobalTable', 1);
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: Match.arrayWith([
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ]),
      SSESpecification: { SSEEnabled: true },
      Replicas: [
        Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } }),
      ],
    });
    template.hasResource('AWS::DynamoDB::GlobalTable', { DeletionPolicy: 'Retain' });
  });
});

describe('Lambda functions', () => {
  test('every step is Node 24 on arm64, traced, in the given VPC subnets and security group', () => {
    const fns = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::Lambda::Function');
    // The steps and the Cut Over Task rule's function.
    expect(fns).toHaveLength(1 + Object.keys(built.stack.dts.functions).length);
    const sg = logicalId(built.stack.dts.securityGroups[0] as never);
    for (const [, fn] of fns) {
      expect(fn.Properties.Runtime).toBe('nodejs24.x');
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      const vpcConfig = fn.Properties.VpcConfig as { SubnetIds: unknown[]; SecurityGroupIds: unknown[] };
      expect(JSON.stringify(vpcConfig.SubnetIds)).toMatch(/privateSubnet1.*privateSubnet2/);
      expect(vpcConfig.SecurityGroupIds).toEqual([{ 'Fn::GetAtt': [sg, 'GroupId'] }]);
      expect(
        (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables.TABLE_NAME,
      ).toEqual({
        Ref: logicalId(built.stack.dts.table),
      });
    }
  });

  test("each Redis-facing function gets its memory budget, its memory less the runtime's baseline, in its environment", () => {
    const budgets: number[] = [];
    for (const r of Object.values(resources).filter((x) => x.Type === 'AWS::Lambda::Function')) {
      const vars = (r.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      const budget = vars.REDIS_DTS_MEMORY_BUDGET;
      if (budget === undefined) continue;
      expect(Number(budget)).toBe(((r.Properties.MemorySize as number) - LAMBDA_BASELINE_MIB) * 1024 * 1024);
      budgets.push(Number(budget));
    }
    // Precheck, CaptureStart, PlanUnits, CopyChunk, IncrementalWindow, Verify, Cleanup.
    expect(budgets).toHaveLength(7);
    expect(Math.max(...budgets)).toBe((1769 - LAMBDA_BASELINE_MIB) * 1024 * 1024);
  });

  test('no function environment holds a password', () => {
    for (const r of Object.values(resources).filter((x) => x.Type === 'AWS::Lambda::Function')) {
      const vars = (r.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(Object.keys(vars).filter((k) => /pass|secret/i.test(k))).toEqual([]);
    }
  });
});

describe('IAM', () => {
  const table = () => ({ 'Fn::GetAtt': [logicalId(built.stack.dts.table), 'Arn'] });
  const roleOf = (fn: { role?: unknown }) => logicalId((fn as { role: never }).role);

  test('DynamoDB access is the store operations, on the task table only', () => {
    const workers = [
      ...Object.values(built.stack.dts.functions).map(roleOf),
      logicalId(built.stack.dts.replicatorTask.taskRole as never),
    ];
    for (const role of workers) {
      const dynamo = statementsOf(role).filter((s) => actions(s).some((a) => a.startsWith('dynamodb:')));
      expect(dynamo).toHaveLength(1);
      expect(actions(dynamo[0]!).sort()).toEqual([...TABLE_ACTIONS].sort());
      expect(dynamo[0]!.Resource).toEqual(table());
    }
  });

  test('secrets are read only under the allowed name prefix, and only by workers that connect to Redis', () => {
    const fns = built.stack.dts.functions;
    const prefix = `:secretsmanager:eu-west-1:123456789012:secret:${built.stack.dts.secretNamePrefix}*`;
    for (const [name, fn] of Object.entries(fns)) {
      const reads = statementsOf(roleOf(fn)).filter((s) =>
        actions(s).some((a) => a.startsWith('secretsmanager:')),
      );
      if (name === 'validate' || name === 'recordFailure') {
        expect(reads).toEqual([]);
        continue;
      }
      expect(reads).toHaveLength(1);
      expect(actions(reads[0]!)).toEqual(['secretsmanager:GetSecretValue']);
      expect(JSON.stringify(reads[0]!.Resource)).toContain(prefix);
    }
  });

  test('the state machine runs the replicator task definition only and passes its two roles only', () => {
    const dts = built.stack.dts;
    const statements = statementsOf(logicalId(dts.stateMachine.role as never));
    const runTask = statements.filter((s) => actions(s).includes('ecs:RunTask'));
    expect(runTask).toHaveLength(1);
    expect(runTask[0]!.Resource).toEqual({ Ref: logicalId(dts.replicatorTask) });
    expect(runTask[0]!.Condition).toEqual({
      ArnEquals: { 'ecs:cluster': { 'Fn::GetAtt': [logicalId(dts.cluster), 'Arn'] } },
    });
    const passRole = statements.filter((s) => actions(s).includes('iam:PassRole'));
    expect(passRole).toHaveLength(1);
    expect(passRole[0]!.Resource).toEqual([
      { 'Fn::GetAtt': [logicalId(dts.replicatorTask.taskRole as never), 'Arn'] },
      { 'Fn::GetAtt': [logicalId(dts.replicatorTask.executionRole as never), 'Arn'] },
    ]);
    const invoked = statements.filter((s) => actions(s).includes('lambda:InvokeFunction'));
    expect(invoked).toHaveLength(Object.keys(dts.functions).length);
    const start = statements.filter((s) => actions(s).includes('states:StartExecution'));
    expect(JSON.stringify(start.map((s) => s.Resource))).toContain(':stateMachine:RedisDtsTest-tasks');
  });

  test('no statement grants every action', () => {
    for (const r of Object.values(resources).filter((x) => x.Type === 'AWS::IAM::Policy')) {
      for (const s of (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement) {
        expect(actions(s).filter((a) => a === '*' || a.endsWith(':*'))).toEqual([]);
      }
    }
  });
});

describe('state machine', () => {
  test('Standard, tracing on, logging every level without execution data', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      StateMachineName: 'RedisDtsTest-tasks',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: false }),
    });
  });

  test('Validate → Precheck → CaptureStart → FullSync → Incremental → Verify → Cleanup → Succeed', () => {
    const s = definition.States;
    expect(definition.StartAt).toBe('Validate');
    expect(s.Validate!.Next).toBe('SpecValid?');
    expect(s['SpecValid?']!.Default).toBe('ResumeAt?');
    expect(s['ResumeAt?']!.Default).toBe('Precheck');
    expect(s.Precheck!.Next).toBe('PrecheckPassed?');
    expect(s['PrecheckPassed?']!.Default).toBe('CaptureStart');
    expect(s.CaptureStart!.Next).toBe('NeedsFullSync?');
    expect(s['NeedsFullSync?']!.Default).toBe('PlanUnits');
    expect(s.PlanUnits!.Next).toBe('UnitsPending?');
    expect(s['UnitsPending?']!.Default).toBe('FullSync');
    expect(s.FullSync!.Type).toBe('Map');
    expect(s.FullSync!.Next).toBe('CheckFullSync');
    expect(s.CheckFullSync!.Next).toBe('FullSyncFinished?');
    expect(choiceTargets(s['FullSyncFinished?']!)).toEqual(['AfterFullSync?', 'ContinueFullSync']);
    expect(choiceTargets(s['AfterFullSync?']!)).toEqual(['Verify', 'IncrementalMode?']);
    expect(choiceTargets(s['IncrementalMode?']!)).toEqual(['StartWindows', 'RunReplicator']);
    expect(s.RunReplicator!.Next).toBe('Verify');
    expect(s.Verify!.Next).toBe('Cleanup');
    expect(s.Cleanup!.Next).toBe('TaskSucceeded');
    expect(s.TaskSucceeded!.Type).toBe('Succeed');
  });

  test('a failed precheck, or unacknowledged warnings, fail the task with the report', () => {
    const s = definition.States;
    const choices = s['PrecheckPassed?']!.Choices!;
    expect(choices[0]).toEqual({
      Variable: '$.precheck.status',
      StringEquals: 'failed',
      Next: 'PrecheckFailed',
    });
    expect(JSON.stringify(choices[1])).toContain('acknowledgeWarnings');
    expect(choices[1]!.Next).toBe('PrecheckFailed');
    expect(s.PrecheckFailed!.Parameters).toEqual({
      Error: 'PrecheckFailed',
      'Cause.$': '$.precheck.summary',
    });
    expect(s.PrecheckFailed!.Next).toBe('RecordFailure');
    expect(s.RecordFailure!.Next).toBe('TaskFailed');
    expect(s.TaskFailed).toMatchObject({
      Type: 'Fail',
      ErrorPath: '$.error.Error',
      CausePath: '$.error.Cause',
    });
  });

  test('full-only tasks with the scan reader skip CaptureStart and Incremental', () => {
    const s = definition.States;
    expect(s['PrecheckPassed?']!.Choices![2]).toEqual({
      And: [
        { Variable: '$.task.syncType', StringEquals: 'full' },
        { Variable: '$.precheck.fullSyncReader', StringEquals: 'scan' },
      ],
      Next: 'PlanUnits',
    });
    expect(s['AfterFullSync?']!.Choices![0]).toEqual({
      Variable: '$.task.syncType',
      StringEquals: 'full',
      Next: 'Verify',
    });
  });

  test('the RDB reader goes from CaptureStart to the replicator, which takes the snapshot and streams on', () => {
    const s = definition.States;
    expect(s.CaptureStart!.Parameters).toMatchObject({ 'fullSyncReader.$': '$.precheck.fullSyncReader' });
    expect(s['NeedsFullSync?']!.Choices).toContainEqual({
      Variable: '$.captureStart.reader',
      StringEquals: 'rdb',
      Next: 'RunReplicator',
    });
  });

  test('each unit is a loop of CopyChunk that ends when done or at its iteration bound', () => {
    const map = definition.States.FullSync!;
    expect(map.ItemsPath).toBe('$.plan.units');
    const inner = map.ItemProcessor!;
    expect(inner.StartAt).toBe('CopyChunk');
    expect(inner.States.CopyChunk!.Next).toBe('UnitDone?');
    const loop = inner.States['UnitDone?']!;
    expect(loop.Choices!.map((c) => c.Next)).toEqual(['UnitCopied', 'UnitPaused']);
    expect(JSON.stringify(loop.Choices![1])).toContain('$.maxIterations');
    expect(loop.Default).toBe('CopyChunk');
    expect(inner.States.CopyChunk!.Resource).toContain(logicalId(built.stack.dts.functions.copyChunk));
    // No Parameters: the function gets the whole item, including the previous turn's progress.
    expect(inner.States.CopyChunk!.Parameters).toBeUndefined();
    expect(inner.States.CopyChunk!.ResultPath).toBe('$.progress');
  });

  test('continuing as new starts this machine with only the task id and phase', () => {
    for (const [state, phase] of [
      ['ContinueFullSync', 'fullsync'],
      ['ContinueIncremental', 'incremental'],
    ] as const) {
      const s = definition.States[state]!;
      expect(s.Resource).toBe('arn:aws:states:::states:startExecution');
      expect(JSON.stringify(s.Parameters!.StateMachineArn)).toContain(':stateMachine:RedisDtsTest-tasks');
      expect(s.Parameters!.Input).toEqual({
        resume: { 'taskId.$': '$.task.taskId', phase },
        'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$': '$$.Execution.Id',
      });
    }
  });

  test('every working state records its failure on the task', () => {
    const s = definition.States;
    for (const name of [
      'Precheck',
      'CaptureStart',
      'PlanUnits',
      'FullSync',
      'CheckFullSync',
      'RunReplicator',
    ]) {
      expect(s[name]!.Catch).toEqual([
        { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'RecordFailure' },
      ]);
    }
    expect(s.Validate!.Catch![0]!.Next).toBe('TaskFailed');
  });

  test('a refused spec ends the execution in SpecRefused, its problems as the cause', () => {
    const s = definition.States;
    const choices = s['SpecValid?']!.Choices as { Variable: string; IsPresent: boolean; Next: string }[];
    expect(choices).toEqual([{ Variable: '$.task.refused', IsPresent: true, Next: 'SpecRefused' }]);
    expect(s.SpecRefused).toMatchObject({
      Type: 'Fail',
      ErrorPath: '$.task.refused.error',
      CausePath: '$.task.refused.cause',
    });
  });

  test('the Fargate replicator runs synchronously with retries', () => {
    const run = definition.States.RunReplicator!;
    expect(run.Resource).toBe('arn:aws:states:::ecs:runTask.sync');
    expect(run.Retry).toEqual([
      { ErrorEquals: ['States.TaskFailed'], IntervalSeconds: 30, MaxAttempts: 3, BackoffRate: 2 },
    ]);
    expect(run.Parameters).toMatchObject({ LaunchType: 'FARGATE' });
  });

  test('the definition is valid Amazon States Language for the local runner', () => {
    expect(() => new LocalStateMachine(definition as never)).not.toThrow();
    // The local runner skips validation: what it runs, the generated file with local timeouts, is checked here.
    expect(() => new LocalStateMachine(loadTaskDefinition() as never)).not.toThrow();
  });
});

describe('secrets never reach the execution', () => {
  test('the container gets passwords as ECS secrets and only the task id as an override', () => {
    const defs = Object.values(resources).find((r) => r.Type === 'AWS::ECS::TaskDefinition')!.Properties
      .ContainerDefinitions as {
      Environment?: { Name: string }[];
      Secrets?: { Name: string; ValueFrom: unknown }[];
    }[];
    expect(defs).toHaveLength(1);
    expect(defs[0]!.Environment!.map((e) => e.Name)).toEqual([
      'TABLE_NAME',
      'REDIS_DTS_EVENT_BUS',
      'REDIS_DTS_MEMORY_BUDGET',
    ]);
    expect(defs[0]!.Secrets).toEqual([{ Name: 'REDIS_DTS_SOURCE_PASSWORD', ValueFrom: SOURCE_SECRET_ARN }]);
    const overrides = (
      definition.States.RunReplicator!.Parameters!.Overrides as {
        ContainerOverrides: { Environment: { Name: string }[] }[];
      }
    ).ContainerOverrides;
    expect(overrides.flatMap((o) => o.Environment.map((e) => e.Name))).toEqual([REPLICATOR_TASK_ENV]);
  });

  test('no state passes a password field or a path into one', () => {
    expect(JSON.stringify(definition)).not.toMatch(/password/i);
  });
});

describe('EventBridge', () => {
  test('a Start Task event on the redis-dts bus starts the machine with its detail as input', () => {
    template.hasResourceProperties('AWS::Events::EventBus', { Name: 'redis-dts' });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: logicalId(built.stack.dts.eventBus) },
      EventPattern: { source: [START_EVENT.source], 'detail-type': [START_EVENT.detailType] },
      Targets: [
        Match.objectLike({ Arn: { Ref: logicalId(built.stack.dts.stateMachine) }, InputPath: '$.detail' }),
      ],
    });
  });

  test('a Cut Over Task event on the bus invokes the cut-over function, which may write the table', () => {
    const fn = built.stack.dts.cutOverFunction;
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: logicalId(built.stack.dts.eventBus) },
      EventPattern: { source: [CUT_OVER_EVENT.source], 'detail-type': [CUT_OVER_EVENT.detailType] },
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [logicalId(fn), 'Arn'] } })],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [logicalId(fn), 'Arn'] },
    });
    const role = logicalId((fn as unknown as { role: never }).role);
    const dynamo = statementsOf(role).filter((s) => actions(s).some((a) => a.startsWith('dynamodb:')));
    expect(dynamo).toHaveLength(1);
    expect(dynamo[0]!.Resource).toEqual({ 'Fn::GetAtt': [logicalId(built.stack.dts.table), 'Arn'] });
  });

  test('every function and the replicator are told the bus and may PutEvents on it, and only on it', () => {
    const dts = built.stack.dts;
    const bus = { 'Fn::GetAtt': [logicalId(dts.eventBus), 'Arn'] };
    const busName = { Ref: logicalId(dts.eventBus) };
    const fns = [...Object.values(dts.functions), dts.cutOverFunction];
    for (const fn of fns) {
      const r = resources[logicalId(fn)]!;
      const vars = (r.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(vars[EVENT_BUS_ENV]).toEqual(busName);
    }
    const roles = [
      ...fns.map((fn) => logicalId((fn as unknown as { role: never }).role)),
      logicalId(dts.replicatorTask.taskRole as never),
    ];
    for (const role of roles) {
      const puts = statementsOf(role).filter((s) => actions(s).some((a) => a.startsWith('events:')));
      expect(puts, role).toHaveLength(1);
      expect(actions(puts[0]!)).toEqual(['events:PutEvents']);
      expect(puts[0]!.Resource).toEqual(bus);
    }
    const container = Object.values(resources).find((r) => r.Type === 'AWS::ECS::TaskDefinition')!;
    const env = (
      container.Properties.ContainerDefinitions as { Environment: { Name: string; Value: unknown }[] }[]
    )[0]!.Environment;
    expect(env).toContainEqual({ Name: EVENT_BUS_ENV, Value: busName });
  });

  test('outputs name the state machine, the table, the bus and the rule', () => {
    const outputs = Object.keys(template.toJSON().Outputs as object);
    expect(outputs).toEqual(
      expect.arrayContaining(['StateMachineArn', 'TableName', 'EventBusName', 'StartTaskRuleName']),
    );
  });
});

describe('cdk-nag', () => {
  test('AwsSolutions reports nothing unacknowledged (Template.fromStack above ran it)', () => {
    expect(template).toBeDefined();
  });

  test('an unacknowledged finding fails synthesis', () => {
    const again = synthTestStack({ nag: true });
    again.stack.dts.table.grantFullAccess(again.stack.dts.functions.validate);
    expect(() => Template.fromStack(again.stack)).toThrow(/AwsSolutions-IAM5/);
  });
});

function choiceTargets(state: { Choices?: { Next: string }[]; Default?: string }): string[] {
  return [...(state.Choices ?? []).map((c) => c.Next), ...(state.Default ? [state.Default] : [])];
}

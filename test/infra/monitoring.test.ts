import { Match, Template } from 'aws-cdk-lib/assertions';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Duration } from 'aws-cdk-lib/core';
import { beforeAll, describe, expect, test } from 'vitest';
import { TASK_PLACEHOLDER } from '../../infra/monitoring.ts';
import { METRICS_NAMESPACE, TASK_METRIC } from '../../lib/metrics/task-metrics.ts';
import { synthTestStack } from './synth-stack.ts';

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

let template: Template;
let resources: Resources;
let dashboardBody: string;

beforeAll(() => {
  // cdk-nag registered: Template.fromStack fails on any unacknowledged finding of the new resources.
  const built = synthTestStack({ nag: true, monitoring: { alarmEmail: 'oncall@example.com' } });
  template = Template.fromStack(built.stack);
  resources = template.toJSON().Resources as Resources;
  const [dashboard] = Object.values(resources).filter((r) => r.Type === 'AWS::CloudWatch::Dashboard');
  // The body is a Fn::Join of strings and region references; the strings are what a widget queries.
  const parts = (dashboard!.Properties.DashboardBody as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1];
  dashboardBody = parts.map((p) => (typeof p === 'string' ? p : '<ref>')).join('');
});

function ofType(type: string) {
  return Object.entries(resources).filter(([, r]) => r.Type === type);
}

function alarmWithDescription(pattern: RegExp) {
  const found = ofType('AWS::CloudWatch::Alarm').filter(([, r]) =>
    pattern.test(String(r.Properties.AlarmDescription)),
  );
  expect(found, String(pattern)).toHaveLength(1);
  return found[0]![1].Properties;
}

const topicRef = () => ({ Ref: ofType('AWS::SNS::Topic')[0]![0] });

describe('dashboard', () => {
  test('one per stack, with a Task variable filled from the task dimension of our metrics', () => {
    expect(ofType('AWS::CloudWatch::Dashboard')).toHaveLength(1);
    const body = JSON.parse(dashboardBody.replaceAll('<ref>', 'eu-west-1')) as {
      variables: { id: string; type: string; pattern: string; search?: string; populateFrom?: string }[];
    };
    expect(body.variables).toEqual([
      expect.objectContaining({
        id: 'task',
        type: 'pattern',
        pattern: TASK_PLACEHOLDER,
        search: `{${METRICS_NAMESPACE},service,task}`,
        populateFrom: 'task',
      }),
    ]);
  });

  test('graphs every task metric the Lambdas and the replicator emit, for the chosen task', () => {
    for (const metric of Object.values(TASK_METRIC)) {
      expect(dashboardBody, metric).toContain(
        `{${METRICS_NAMESPACE},service,task} MetricName=\\"${metric}\\" task=\\"${TASK_PLACEHOLDER}\\"`,
      );
    }
  });

  test('shows the executions and the state of every alarm', () => {
    for (const m of ['ExecutionsStarted', 'ExecutionsSucceeded', 'ExecutionsFailed', 'ExecutionsTimedOut']) {
      expect(dashboardBody).toContain(`"AWS/States","${m}"`);
    }
    const body = JSON.parse(dashboardBody.replaceAll('<ref>', 'x')) as {
      widgets: { type: string; properties: { alarms?: unknown[] } }[];
    };
    const status = body.widgets.find((w) => w.type === 'alarm');
    expect(status?.properties.alarms).toHaveLength(3);
  });
});

describe('alarms', () => {
  test('lag above the threshold for 5 minutes, over every task (a Metrics Insights query)', () => {
    const lag = alarmWithDescription(/replication lag/);
    expect(lag).toMatchObject({
      Threshold: 60_000,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 5,
      DatapointsToAlarm: 5,
      TreatMissingData: 'notBreaching',
      Metrics: [
        {
          Expression: `SELECT MAX(${TASK_METRIC.lagMs}) FROM SCHEMA("${METRICS_NAMESPACE}", service, task)`,
          Period: 60,
          ReturnData: true,
        },
      ],
      AlarmActions: [topicRef()],
    });
  });

  test('an execution failed, timed out or was aborted', () => {
    const failed = alarmWithDescription(/execution failed/);
    expect(failed.Threshold).toBe(1);
    expect(failed.AlarmActions).toEqual([topicRef()]);
    const names = (failed.Metrics as { MetricStat?: { Metric: { MetricName: string; Namespace: string } } }[])
      .flatMap((m) =>
        m.MetricStat ? [`${m.MetricStat.Metric.Namespace}/${m.MetricStat.Metric.MetricName}`] : [],
      )
      .sort();
    expect(names).toEqual([
      'AWS/States/ExecutionsAborted',
      'AWS/States/ExecutionsFailed',
      'AWS/States/ExecutionsTimedOut',
    ]);
  });

  test('a verification found inconsistent keys', () => {
    const inconsistent = alarmWithDescription(/inconsistent keys/);
    expect(inconsistent).toMatchObject({
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      Metrics: [{ Expression: expect.stringContaining(`MAX(${TASK_METRIC.inconsistentKeys})`) }],
      AlarmActions: [topicRef()],
    });
  });

  test('the replicator container stopping unexpectedly notifies the topic (EventBridge, ECS task state)', () => {
    const rules = ofType('AWS::Events::Rule').filter(([, r]) =>
      JSON.stringify(r.Properties.EventPattern).includes('ECS Task State Change'),
    );
    expect(rules).toHaveLength(1);
    const rule = rules[0]![1].Properties;
    expect(rule.EventPattern).toMatchObject({
      source: ['aws.ecs'],
      detail: {
        lastStatus: ['STOPPED'],
        $or: [
          { stopCode: expect.arrayContaining(['TaskFailedToStart']) },
          { containers: { name: ['replicator'], exitCode: [{ 'anything-but': 0 }] } },
        ],
      },
    });
    expect(rule.Targets).toEqual([expect.objectContaining({ Arn: topicRef() })]);
  });
});

describe('alarm topic', () => {
  test('encrypted with a rotated key that CloudWatch and EventBridge may use, SSL only, the email subscribed', () => {
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    const key = ofType('AWS::KMS::Key')[0]![1].Properties.KeyPolicy as {
      Statement: { Principal: unknown }[];
    };
    const principals = JSON.stringify(key.Statement.map((s) => s.Principal));
    expect(principals).toContain('cloudwatch.amazonaws.com');
    expect(principals).toContain('events.amazonaws.com');
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
    template.hasOutput('AlarmTopicArn', { Value: topicRef() });
    template.hasOutput('DashboardName', {});
  });

  test("the user's own topic and lag threshold are used instead of a new topic", () => {
    const built = synthTestStack({
      monitoring: (network) => ({
        alarmTopic: new Topic(network, 'OwnAlarms'),
        lagAlarmThreshold: Duration.seconds(10),
      }),
    });
    const own = Template.fromStack(built.stack).toJSON().Resources as Resources;
    expect(Object.values(own).filter((r) => r.Type === 'AWS::SNS::Topic')).toEqual([]);
    expect(Object.values(own).filter((r) => r.Type === 'AWS::KMS::Key')).toEqual([]);
    const alarms = Object.values(own).filter((r) => r.Type === 'AWS::CloudWatch::Alarm');
    expect(alarms).toHaveLength(3);
    for (const a of alarms) expect(JSON.stringify(a.Properties.AlarmActions)).toMatch(/OwnAlarms/);
    const lag = alarms.find((r) => /replication lag/.test(String(r.Properties.AlarmDescription)));
    expect(lag?.Properties.Threshold).toBe(10_000);
  });
});

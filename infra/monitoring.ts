import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  DashboardVariable,
  DefaultValue,
  GraphWidget,
  type IMetric,
  MathExpression,
  SearchExpression,
  SingleValueWidget,
  TextWidget,
  TreatMissingData,
  Values,
  VariableInputType,
  VariableType,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ICluster } from 'aws-cdk-lib/aws-ecs';
import { EventField, Rule, RuleTargetInput } from 'aws-cdk-lib/aws-events';
import { SnsTopic } from 'aws-cdk-lib/aws-events-targets';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Duration, Stack } from 'aws-cdk-lib/core';
import { Construct } from 'constructs';
import {
  METRICS_NAMESPACE,
  TASK_DIMENSIONS,
  TASK_METRIC,
  type TaskMetricName,
} from '../lib/metrics/task-metrics.ts';

export interface TaskMonitoringProps {
  /** Where the alarms and the "replicator stopped" notices go. Default: a new KMS-encrypted topic. */
  alarmTopic?: ITopic;
  /** An address subscribed to the alarm topic (AWS mails a confirmation link first). */
  alarmEmail?: string;
  /** The lag alarm fires when a task's lag stays above this for 5 minutes. Default 1 minute. */
  lagAlarmThreshold?: Duration;
  /** Default `<stack name>-redis-dts`. */
  dashboardName?: string;
}

export interface MonitoredParts {
  stateMachine: StateMachine;
  cluster: ICluster;
  /** The replicator's container name: its non-zero exit is an unexpected stop. */
  replicatorContainer: string;
}

/** The text the dashboard variable replaces with the chosen task id in every widget's query. */
export const TASK_PLACEHOLDER = '__redis_dts_task__';

const DIMENSIONS = `{${METRICS_NAMESPACE},${TASK_DIMENSIONS.join(',')}}`;
const LAG_MINUTES = 5;

/**
 * What an operator watches during a migration: a dashboard (one task at a time, chosen in its `task`
 * variable), alarms on lag, failed executions and inconsistent keys, and a notice when the replicator
 * container stops unexpectedly, all to one SNS topic.
 *
 * The dashboard reads the task metrics with SEARCH (they come from the Lambdas and the replicator under
 * two service names); alarms cannot use SEARCH, so they use Metrics Insights queries over every task:
 * one alarm per stack that names no task, and the dashboard tells which task it is.
 */
export class TaskMonitoring extends Construct {
  readonly dashboard: Dashboard;
  readonly alarmTopic: ITopic;
  readonly lagAlarm: Alarm;
  readonly executionsFailedAlarm: Alarm;
  readonly inconsistentKeysAlarm: Alarm;
  readonly replicatorStoppedRule: Rule;

  constructor(scope: Construct, id: string, parts: MonitoredParts, props: TaskMonitoringProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    this.alarmTopic = props.alarmTopic ?? this.encryptedTopic();
    if (props.alarmEmail) this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));
    const notify = new SnsAction(this.alarmTopic);

    const lagThreshold = props.lagAlarmThreshold ?? Duration.minutes(1);
    this.lagAlarm = new Alarm(this, 'LagAlarm', {
      alarmDescription:
        `redis-dts: a task's replication lag has been above ${lagThreshold.toHumanString()} for ` +
        `${LAG_MINUTES} minutes (the dashboard's lag widget shows which task)`,
      metric: everyTask('MAX', TASK_METRIC.lagMs, Duration.minutes(1)),
      threshold: lagThreshold.toMilliseconds(),
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: LAG_MINUTES,
      datapointsToAlarm: LAG_MINUTES,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    this.executionsFailedAlarm = new Alarm(this, 'ExecutionsFailedAlarm', {
      alarmDescription:
        'redis-dts: a task execution failed, timed out or was aborted (its cause is in the execution)',
      metric: new MathExpression({
        expression: 'failed + timedOut + aborted',
        label: 'executions failed, timed out or aborted',
        usingMetrics: {
          failed: parts.stateMachine.metricFailed({ statistic: 'Sum' }),
          timedOut: parts.stateMachine.metricTimedOut({ statistic: 'Sum' }),
          aborted: parts.stateMachine.metricAborted({ statistic: 'Sum' }),
        },
        period: Duration.minutes(1),
      }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    this.inconsistentKeysAlarm = new Alarm(this, 'InconsistentKeysAlarm', {
      alarmDescription:
        'redis-dts: a verification (sampled during incremental sync, or the final one) found inconsistent keys; ' +
        '`redis-dts status` names examples',
      metric: everyTask('MAX', TASK_METRIC.inconsistentKeys, Duration.minutes(5)),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    for (const alarm of [this.lagAlarm, this.executionsFailedAlarm, this.inconsistentKeysAlarm]) {
      alarm.addAlarmAction(notify);
    }

    // A clean end (stop flag, caught up, SIGTERM) exits 0; anything else is worth a page.
    this.replicatorStoppedRule = new Rule(this, 'ReplicatorStoppedRule', {
      description:
        'redis-dts: the replicator container stopped unexpectedly (non-zero exit or failed to start)',
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: {
          clusterArn: [parts.cluster.clusterArn],
          lastStatus: ['STOPPED'],
          $or: [
            { stopCode: ['TaskFailedToStart', 'SpotInterruption', 'TerminationNotice'] },
            { containers: { name: [parts.replicatorContainer], exitCode: [{ 'anything-but': 0 }] } },
          ],
        },
      },
      targets: [
        new SnsTopic(this.alarmTopic, {
          message: RuleTargetInput.fromText(
            `redis-dts: the replicator task ${EventField.fromPath('$.detail.taskArn')} stopped: ` +
              `${EventField.fromPath('$.detail.stoppedReason')} (stop code ${EventField.fromPath('$.detail.stopCode')}). ` +
              'The state machine retries it; the task resumes from the destination marker.',
          ),
        }),
      ],
    });

    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName ?? `${stack.stackName}-redis-dts`,
      defaultInterval: Duration.hours(3),
      variables: [
        new DashboardVariable({
          id: 'task',
          type: VariableType.PATTERN,
          label: 'Task',
          inputType: VariableInputType.SELECT,
          value: TASK_PLACEHOLDER,
          values: Values.fromSearch(DIMENSIONS, 'task'),
          defaultValue: DefaultValue.FIRST,
          visible: true,
        }),
      ],
    });
    const graph = (title: string, metrics: IMetric[], unit?: string) =>
      new GraphWidget({
        title,
        left: metrics,
        width: 8,
        height: 6,
        ...(unit ? { leftYAxis: { label: unit, showUnits: false } } : {}),
      });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown:
          '## redis-dts tasks\nPick a task in the **Task** variable above. Lag is the heartbeat round trip ' +
          '(apply time minus source time); bytes behind is the source offset minus the applied one.',
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      graph('Replication lag (ms)', [oneTask(TASK_METRIC.lagMs, 'Maximum')], 'ms'),
      graph('Bytes behind the source', [oneTask(TASK_METRIC.bytesBehind, 'Maximum')], 'bytes'),
      new GraphWidget({
        title: 'Applied commands',
        left: [oneTask(TASK_METRIC.opsPerSecond, 'Average')],
        right: [oneTask(TASK_METRIC.commandsApplied, 'Sum')],
        leftYAxis: { label: 'per second', showUnits: false },
        rightYAxis: { label: 'per minute', showUnits: false },
        width: 8,
        height: 6,
      }),
    );
    this.dashboard.addWidgets(
      graph('Full sync: keys copied per minute', [oneTask(TASK_METRIC.keysCopied, 'Sum')], 'keys/min'),
      new SingleValueWidget({
        title: 'Full sync: keys copied (time range)',
        metrics: [totalOf(TASK_METRIC.keysCopied)],
        setPeriodToTimeRange: true,
        width: 8,
        height: 6,
      }),
      graph('Keys re-copied per minute', [oneTask(TASK_METRIC.keysRecopied, 'Sum')], 'keys/min'),
    );
    this.dashboard.addWidgets(
      graph(
        'Inconsistent keys (last verification)',
        [oneTask(TASK_METRIC.inconsistentKeys, 'Maximum')],
        'keys',
      ),
      graph('Replicator starts', [oneTask(TASK_METRIC.replicatorStarts, 'Sum')], 'starts'),
      graph(
        'Executions (every task)',
        [
          parts.stateMachine.metricStarted({ statistic: 'Sum', label: 'started' }),
          parts.stateMachine.metricSucceeded({ statistic: 'Sum', label: 'succeeded' }),
          parts.stateMachine.metricFailed({ statistic: 'Sum', label: 'failed' }),
          parts.stateMachine.metricTimedOut({ statistic: 'Sum', label: 'timed out' }),
        ],
        'executions',
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'Keyspace notifications reader: gaps and repair rounds (so far)',
        [oneTask(TASK_METRIC.eventGaps, 'Maximum'), oneTask(TASK_METRIC.repairRounds, 'Maximum')],
        'count',
      ),
      graph(
        'Keyspace notifications reader: keys waiting to be copied',
        [oneTask(TASK_METRIC.dirtyKeys, 'Maximum')],
        'keys',
      ),
    );
    this.dashboard.addWidgets(
      new AlarmStatusWidget({
        title: 'Alarms',
        alarms: [this.lagAlarm, this.executionsFailedAlarm, this.inconsistentKeysAlarm],
        width: 24,
        height: 3,
      }),
    );
  }

  private encryptedTopic(): Topic {
    const key = new Key(this, 'AlarmTopicKey', {
      description: 'redis-dts alarm topic encryption',
      enableKeyRotation: true,
    });
    // CloudWatch alarms and EventBridge publish to the topic: they need the key too.
    for (const service of ['cloudwatch.amazonaws.com', 'events.amazonaws.com']) {
      key.grant(new ServicePrincipal(service), 'kms:Decrypt', 'kms:GenerateDataKey*');
    }
    return new Topic(this, 'AlarmTopic', {
      displayName: 'redis-dts alarms',
      masterKey: key,
      enforceSSL: true,
    });
  }
}

/** One task's series (the dashboard variable picks it), from whichever service emitted it. */
function oneTask(metric: TaskMetricName, statistic: string): SearchExpression {
  return new SearchExpression({
    expression: `SEARCH('${DIMENSIONS} MetricName="${metric}" task="${TASK_PLACEHOLDER}"', '${statistic}', 60)`,
    label: metric,
  });
}

function totalOf(metric: TaskMetricName): MathExpression {
  return new MathExpression({
    expression: `SUM(SEARCH('${DIMENSIONS} MetricName="${metric}" task="${TASK_PLACEHOLDER}"', 'Sum', 60))`,
    label: metric,
  });
}

/** Every task at once, for an alarm (alarms take Metrics Insights queries, not SEARCH). */
function everyTask(fn: 'MAX' | 'SUM', metric: TaskMetricName, period: Duration): MathExpression {
  return new MathExpression({
    expression: `SELECT ${fn}(${metric}) FROM SCHEMA("${METRICS_NAMESPACE}", ${TASK_DIMENSIONS.join(', ')})`,
    label: `${metric} (every task)`,
    period,
  });
}

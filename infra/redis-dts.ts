import { AttributeType, Billing, TableEncryptionV2, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import { SecurityGroup, SubnetType } from 'aws-cdk-lib/aws-ec2';
import { Cluster, ContainerInsights, type FargateTaskDefinition } from 'aws-cdk-lib/aws-ecs';
import { EventBus, Rule, RuleTargetInput } from 'aws-cdk-lib/aws-events';
import { LambdaFunction, SfnStateMachine } from 'aws-cdk-lib/aws-events-targets';
import { type IGrantable, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Architecture, type IFunction, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  DefinitionBody,
  LogLevel,
  QueryLanguage,
  StateMachine,
  StateMachineType,
} from 'aws-cdk-lib/aws-stepfunctions';
import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib/core';
import { Construct } from 'constructs';
import { EVENT_BUS_ENV } from '../lib/events/eventbridge-sink.ts';
import { CUT_OVER_EVENT } from '../lib/orchestration/cut-over-event.ts';
import { budgetForMemory, MEMORY_BUDGET_ENV } from '../lib/util/memory-budget.ts';
import { TaskMonitoring, type TaskMonitoringProps } from './monitoring.ts';
import { PROJECT_ROOT } from './project-root.ts';
import { addReplicatorTask, REPLICATOR_CONTAINER, type ReplicatorPasswords } from './replicator-task.ts';
import { buildTaskDefinition, type StepFunctions } from './task-definition.ts';

/** Event source and detail-type that start a task; the event's detail is the task spec. */
export const START_EVENT = { source: 'redis-dts', detailType: 'Start Task' } as const;
export { CUT_OVER_EVENT };

export const DEFAULT_SECRET_NAME_PREFIX = 'redis-dts/';

/** DynamoDB actions the task store uses (lib/state/task-store.ts), nothing more. */
export const TABLE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:DeleteItem',
  'dynamodb:Query',
];

export interface RedisDtsProps {
  /** The VPC the Redis servers are reachable from; Lambdas and the replicator run in it. */
  vpc: IVpc;
  /** Subnets for the Lambdas and the replicator. Default: the VPC's private subnets with egress. */
  vpcSubnets?: SubnetSelection;
  /**
   * Security groups the Redis servers admit. Default: one new group with outbound access only (add it
   * to the servers' inbound rules).
   */
  securityGroups?: ISecurityGroup[];
  /**
   * Only secrets whose name starts with this may be read (task specs name them by passwordSecretArn).
   * Default 'redis-dts/'.
   */
  secretNamePrefix?: string;
  /** Passwords given to the replicator container as ECS secrets (REDIS_DTS_SOURCE/TARGET_PASSWORD). */
  replicatorPasswords?: ReplicatorPasswords;
  /** Units (dbs) copied at the same time. Default 4. */
  maxConcurrentUnits?: number;
  /** Default `<stack name>-tasks`; fixed so that an execution can start its continuation. */
  stateMachineName?: string;
  /** Default 'redis-dts'. */
  eventBusName?: string;
  /** Default RETAIN: task state and checkpoints outlive the stack. */
  tableRemovalPolicy?: RemovalPolicy;
  /** The dashboard and alarms (monitoring.ts): where alarms go, the lag threshold, the dashboard name. */
  monitoring?: TaskMonitoringProps;
}

/**
 * What a step Lambda's process takes besides the data it holds: the Node 24 runtime, the bundled code
 * with the AWS SDK clients, and the garbage collector's slack (a sync process idles at ~100-150 MB RSS;
 * the rest is margin). The memory budget of a function is its memory less this.
 */
export const LAMBDA_BASELINE_MIB = 256;

interface FunctionSpec {
  dir: string;
  timeout: Duration;
  memorySize: number;
  /** Connects to Redis, so reads the endpoints' secrets. */
  redis: boolean;
}

const FUNCTIONS: Record<keyof StepFunctions, FunctionSpec> = {
  validate: { dir: 'validate', timeout: Duration.seconds(30), memorySize: 256, redis: false },
  precheck: { dir: 'precheck', timeout: Duration.minutes(5), memorySize: 512, redis: true },
  captureStart: { dir: 'capture-start', timeout: Duration.minutes(5), memorySize: 512, redis: true },
  planUnits: { dir: 'plan-units', timeout: Duration.minutes(2), memorySize: 512, redis: true },
  copyChunk: { dir: 'copy-chunk', timeout: Duration.minutes(15), memorySize: 1769, redis: true },
  incrementalWindow: {
    dir: 'incremental-window',
    timeout: Duration.minutes(15),
    memorySize: 1024,
    redis: true,
  },
  verify: { dir: 'verify', timeout: Duration.minutes(15), memorySize: 1024, redis: true },
  cleanup: { dir: 'cleanup', timeout: Duration.minutes(5), memorySize: 512, redis: true },
  recordFailure: { dir: 'record-failure', timeout: Duration.seconds(30), memorySize: 256, redis: false },
};

/** Each Redis-facing step's memory budget (REDIS_DTS_MEMORY_BUDGET), bytes: what tests run locally. */
export function stepMemoryBudgets(): Partial<Record<keyof StepFunctions, number>> {
  const out: Partial<Record<keyof StepFunctions, number>> = {};
  for (const [name, spec] of Object.entries(FUNCTIONS) as [keyof StepFunctions, FunctionSpec][]) {
    if (spec.redis) out[name] = budgetForMemory(spec.memorySize, LAMBDA_BASELINE_MIB);
  }
  return out;
}

/**
 * redis-dts on AWS: the task table, the step Lambdas and the Fargate replicator in the user's VPC, the
 * task state machine, and an EventBridge rule that starts it.
 */
export class RedisDts extends Construct {
  readonly table: TableV2;
  readonly stateMachine: StateMachine;
  readonly functions: Record<keyof StepFunctions, NodejsFunction>;
  readonly eventBus: EventBus;
  readonly startRule: Rule;
  /** `Cut Over Task` events → the cut-over function, which sets the task's cut-over request. */
  readonly cutOverRule: Rule;
  readonly cutOverFunction: NodejsFunction;
  readonly cluster: Cluster;
  readonly replicatorTask: FargateTaskDefinition;
  readonly securityGroups: ISecurityGroup[];
  readonly secretNamePrefix: string;
  /** The secrets the workers may read: `<prefix>*`. */
  readonly secretArns: string;
  /** The replicator tasks the state machine may stop and describe. */
  readonly replicatorTaskArns: string;
  /** Dashboard, alarms and their SNS topic. */
  readonly monitoring: TaskMonitoring;

  constructor(scope: Construct, id: string, props: RedisDtsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.secretNamePrefix = props.secretNamePrefix ?? DEFAULT_SECRET_NAME_PREFIX;
    const subnets = props.vpcSubnets ?? { subnetType: SubnetType.PRIVATE_WITH_EGRESS };
    this.securityGroups = props.securityGroups ?? [
      new SecurityGroup(this, 'WorkerSecurityGroup', {
        vpc: props.vpc,
        description: 'redis-dts workers: admit this group on the Redis servers (6379 or their port)',
        allowAllOutbound: true,
      }),
    ];

    this.table = new TableV2(this, 'TaskTable', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      billing: Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryptionV2.awsManagedKey(),
      removalPolicy: props.tableRemovalPolicy ?? RemovalPolicy.RETAIN,
    });

    this.secretArns = stack.formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `${this.secretNamePrefix}*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const secretArns = this.secretArns;
    const grantTable = (g: IGrantable) =>
      g.grantPrincipal.addToPrincipalPolicy(
        new PolicyStatement({ actions: TABLE_ACTIONS, resources: [this.table.tableArn] }),
      );
    const grantSecrets = (g: IGrantable) =>
      g.grantPrincipal.addToPrincipalPolicy(
        new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [secretArns] }),
      );

    // Made before the workers: each is told its name and may put the task lifecycle events on it.
    this.eventBus = new EventBus(this, 'EventBus', { eventBusName: props.eventBusName ?? 'redis-dts' });
    const grantEvents = (g: IGrantable) =>
      g.grantPrincipal.addToPrincipalPolicy(
        new PolicyStatement({ actions: ['events:PutEvents'], resources: [this.eventBus.eventBusArn] }),
      );

    const makeFunction = (name: string, spec: FunctionSpec) => {
      const fn = new NodejsFunction(this, `${upperFirst(name)}Function`, {
        entry: `${PROJECT_ROOT}functions/${spec.dir}/handler.ts`,
        handler: 'handler',
        projectRoot: PROJECT_ROOT,
        depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
        runtime: Runtime.NODEJS_24_X,
        architecture: Architecture.ARM_64,
        timeout: spec.timeout,
        memorySize: spec.memorySize,
        vpc: props.vpc,
        vpcSubnets: subnets,
        securityGroups: this.securityGroups,
        tracing: Tracing.ACTIVE,
        logGroup: new LogGroup(this, `${upperFirst(name)}Logs`, {
          retention: RetentionDays.ONE_MONTH,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
        environment: {
          TABLE_NAME: this.table.tableName,
          [EVENT_BUS_ENV]: this.eventBus.eventBusName,
          POWERTOOLS_SERVICE_NAME: 'redis-dts',
          POWERTOOLS_METRICS_NAMESPACE: 'RedisDts',
          NODE_OPTIONS: '--enable-source-maps',
          ...(spec.redis
            ? { [MEMORY_BUDGET_ENV]: String(budgetForMemory(spec.memorySize, LAMBDA_BASELINE_MIB)) }
            : {}),
        },
        bundling: {
          format: OutputFormat.ESM,
          target: 'node24',
          sourceMap: true,
          minify: true,
          // ioredis and friends are CommonJS: give the ESM bundle a require.
          banner:
            "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        },
      });
      grantTable(fn);
      grantEvents(fn);
      if (spec.redis) grantSecrets(fn);
      return fn;
    };
    const fns = {} as Record<keyof StepFunctions, NodejsFunction>;
    for (const [name, spec] of Object.entries(FUNCTIONS) as [keyof StepFunctions, FunctionSpec][]) {
      fns[name] = makeFunction(name, spec);
    }
    this.functions = fns;
    this.cutOverFunction = makeFunction('cutOver', {
      dir: 'cut-over',
      timeout: Duration.seconds(30),
      memorySize: 256,
      redis: false,
    });

    this.cluster = new Cluster(this, 'Cluster', {
      vpc: props.vpc,
      containerInsightsV2: ContainerInsights.ENABLED,
    });
    this.replicatorTask = addReplicatorTask(this, {
      tableName: this.table.tableName,
      eventBusName: this.eventBus.eventBusName,
      passwords: props.replicatorPasswords,
    });
    grantTable(this.replicatorTask.taskRole);
    grantEvents(this.replicatorTask.taskRole);
    grantSecrets(this.replicatorTask.taskRole);

    const stateMachineName = props.stateMachineName ?? `${stack.stackName}-tasks`;
    const self = StateMachine.fromStateMachineName(this, 'Self', stateMachineName);
    const { definition, policy, taskArns } = buildTaskDefinition(this, {
      functions: fns as Record<keyof StepFunctions, IFunction>,
      replicator: {
        vpc: props.vpc,
        cluster: this.cluster,
        taskDefinition: this.replicatorTask,
        containerName: REPLICATOR_CONTAINER,
        subnets,
        securityGroups: this.securityGroups,
      },
      self,
      maxConcurrentUnits: props.maxConcurrentUnits ?? 4,
    });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineName,
      stateMachineType: StateMachineType.STANDARD,
      queryLanguage: QueryLanguage.JSON_PATH,
      definitionBody: DefinitionBody.fromChainable(definition),
      tracingEnabled: true,
      logs: {
        destination: new LogGroup(this, 'StateMachineLogs', {
          retention: RetentionDays.ONE_MONTH,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
        level: LogLevel.ALL,
        // Inputs and outputs stay out of the logs (they name hosts and secret ARNs; never passwords).
        includeExecutionData: false,
      },
    });

    for (const statement of policy) this.stateMachine.addToRolePolicy(statement);
    this.replicatorTaskArns = taskArns;

    this.startRule = new Rule(this, 'StartTaskRule', {
      eventBus: this.eventBus,
      description: 'Starts a redis-dts task: the detail of the event is the task spec',
      eventPattern: { source: [START_EVENT.source], detailType: [START_EVENT.detailType] },
      targets: [new SfnStateMachine(this.stateMachine, { input: RuleTargetInput.fromEventPath('$.detail') })],
    });
    this.cutOverRule = new Rule(this, 'CutOverTaskRule', {
      eventBus: this.eventBus,
      description:
        'Asks a running redis-dts task to cut over: the detail is {"taskId": …, "quietTimeoutMs": …}',
      eventPattern: { source: [CUT_OVER_EVENT.source], detailType: [CUT_OVER_EVENT.detailType] },
      targets: [new LambdaFunction(this.cutOverFunction, { retryAttempts: 2 })],
    });

    this.monitoring = new TaskMonitoring(
      this,
      'Monitoring',
      { stateMachine: this.stateMachine, cluster: this.cluster, replicatorContainer: REPLICATOR_CONTAINER },
      props.monitoring,
    );
  }
}

function upperFirst(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

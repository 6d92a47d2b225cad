import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import {
  ContainerImage,
  CpuArchitecture,
  Secret as EcsSecret,
  FargateTaskDefinition,
  LogDrivers,
  OperatingSystemFamily,
} from 'aws-cdk-lib/aws-ecs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { IgnoreMode, RemovalPolicy } from 'aws-cdk-lib/core';
import type { Construct } from 'constructs';
import { EVENT_BUS_ENV } from '../lib/events/eventbridge-sink.ts';
import { budgetForMemory, MEMORY_BUDGET_ENV } from '../lib/util/memory-budget.ts';
import { PROJECT_ROOT } from './project-root.ts';

export const REPLICATOR_CONTAINER = 'replicator';

/** Passwords the replicator container gets as ECS secrets (the variables resolveEndpoint reads by default). */
export interface ReplicatorPasswords {
  source?: ISecret;
  target?: ISecret;
}

/**
 * The replicator's build context, as an allow-list (Docker ignore syntax): package.json, the lock file,
 * lib/, functions/replicator/ and functions/shared/ (its metrics). Keeps synth from copying the repository (tool caches, node_modules).
 */
export const REPLICATOR_CONTEXT_EXCLUDES = [
  '*',
  '!package.json',
  '!package-lock.json',
  '!lib',
  '!functions',
  'functions/*',
  '!functions/replicator',
  '!functions/shared',
];

const REPLICATOR_MEMORY_MIB = 2048;

/**
 * The Fargate task definition of the incremental replicator (arm64), its image built from
 * functions/replicator/Dockerfile by `cdk deploy` (synth only stages the context).
 */
export function addReplicatorTask(
  scope: Construct,
  o: { tableName: string; eventBusName: string; passwords?: ReplicatorPasswords },
): FargateTaskDefinition {
  const task = new FargateTaskDefinition(scope, 'ReplicatorTask', {
    cpu: 1024,
    memoryLimitMiB: REPLICATOR_MEMORY_MIB,
    runtimePlatform: {
      cpuArchitecture: CpuArchitecture.ARM64,
      operatingSystemFamily: OperatingSystemFamily.LINUX,
    },
  });
  const secrets: Record<string, EcsSecret> = {};
  if (o.passwords?.source)
    secrets.REDIS_DTS_SOURCE_PASSWORD = EcsSecret.fromSecretsManager(o.passwords.source);
  if (o.passwords?.target)
    secrets.REDIS_DTS_TARGET_PASSWORD = EcsSecret.fromSecretsManager(o.passwords.target);
  task.addContainer(REPLICATOR_CONTAINER, {
    image: ContainerImage.fromAsset(PROJECT_ROOT, {
      file: 'functions/replicator/Dockerfile',
      platform: Platform.LINUX_ARM64,
      exclude: REPLICATOR_CONTEXT_EXCLUDES,
      ignoreMode: IgnoreMode.DOCKER,
    }),
    logging: LogDrivers.awsLogs({
      streamPrefix: 'replicator',
      logGroup: new LogGroup(scope, 'ReplicatorLogs', {
        retention: RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      }),
    }),
    // The table name and the budget: the task id comes as the one override, passwords as the secrets above.
    environment: {
      TABLE_NAME: o.tableName,
      // The task lifecycle events (Caught Up, Backlog Lost, Cut Over Refused …) go to the stack's bus.
      [EVENT_BUS_ENV]: o.eventBusName,
      // The replicator also spools the stream in memory: half the container is the data's budget.
      [MEMORY_BUDGET_ENV]: String(budgetForMemory(REPLICATOR_MEMORY_MIB / 2, 0)),
    },
    secrets,
    readonlyRootFilesystem: true,
  });
  return task;
}

import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import type { ICluster, TaskDefinition } from 'aws-cdk-lib/aws-ecs';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { CustomState } from 'aws-cdk-lib/aws-stepfunctions';
import { Stack } from 'aws-cdk-lib/core';
import type { Construct } from 'constructs';

import { REPLICATOR_TASK_ENV } from '../lib/orchestration/step-types.ts';

export { REPLICATOR_TASK_ENV };

/** The rule Step Functions manages to learn that a `.sync` ECS task stopped. */
const SYNC_RULE = 'StepFunctionsGetEventsForECSTaskRule';

export interface ReplicatorTarget {
  vpc: IVpc;
  cluster: ICluster;
  taskDefinition: TaskDefinition;
  containerName: string;
  subnets: SubnetSelection;
  securityGroups: ISecurityGroup[];
}

/**
 * The RunReplicator state, `ecs:runTask.sync` on Fargate, written out rather than with EcsRunTask so that
 * its permissions can be exact: RunTask on this task definition revision in this cluster only, PassRole
 * on its two roles only. The container gets the task id and nothing else: the spec comes from the table
 * and passwords from its ECS secrets.
 */
export function replicatorRunTask(
  scope: Construct,
  id: string,
  t: ReplicatorTarget,
  taskIdPath: string,
): { state: CustomState; policy: PolicyStatement[]; taskArns: string } {
  const stack = Stack.of(scope);
  const state = new CustomState(scope, id, {
    stateJson: {
      Type: 'Task',
      Resource: `arn:${stack.partition}:states:::ecs:runTask.sync`,
      Parameters: {
        Cluster: t.cluster.clusterArn,
        TaskDefinition: t.taskDefinition.taskDefinitionArn,
        LaunchType: 'FARGATE',
        PlatformVersion: 'LATEST',
        NetworkConfiguration: {
          AwsvpcConfiguration: {
            Subnets: t.vpc.selectSubnets(t.subnets).subnetIds,
            SecurityGroups: t.securityGroups.map((g) => g.securityGroupId),
            AssignPublicIp: 'DISABLED',
          },
        },
        Overrides: {
          ContainerOverrides: [
            { Name: t.containerName, Environment: [{ Name: REPLICATOR_TASK_ENV, 'Value.$': taskIdPath }] },
          ],
        },
      },
      // No TimeoutSeconds: the replicator runs until the task is stopped, as long as the execution may.
      ResultPath: null,
    },
  });
  const taskArns = stack.formatArn({
    service: 'ecs',
    resource: 'task',
    resourceName: `${t.cluster.clusterName}/*`,
  });
  const policy = [
    new PolicyStatement({
      actions: ['ecs:RunTask'],
      resources: [t.taskDefinition.taskDefinitionArn],
      conditions: { ArnEquals: { 'ecs:cluster': t.cluster.clusterArn } },
    }),
    new PolicyStatement({ actions: ['ecs:StopTask', 'ecs:DescribeTasks'], resources: [taskArns] }),
    new PolicyStatement({
      actions: ['iam:PassRole'],
      resources: [t.taskDefinition.taskRole.roleArn, t.taskDefinition.obtainExecutionRole().roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    }),
    new PolicyStatement({
      actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
      resources: [stack.formatArn({ service: 'events', resource: 'rule', resourceName: SYNC_RULE })],
    }),
  ];
  return { state, policy, taskArns };
}

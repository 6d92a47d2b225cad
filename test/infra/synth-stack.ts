import { SubnetType, Vpc } from 'aws-cdk-lib/aws-ec2';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { App, Stack, Validations } from 'aws-cdk-lib/core';
import { AwsSolutionsChecks } from 'cdk-nag';
import { type Definition, definitionFromTemplate, type StateJson } from '../../infra/definition-json.ts';
import type { TaskMonitoringProps } from '../../infra/monitoring.ts';
import { RedisDtsStack } from '../../infra/redis-dts-stack.ts';

export const TEST_ENV = { account: '123456789012', region: 'eu-west-1' };
export const SOURCE_SECRET_ARN =
  'arn:aws:secretsmanager:eu-west-1:123456789012:secret:redis-dts/source-AbCdEf';

/**
 * The stack as tests see it: in-process, with a test VPC from a separate stack (the user's VPC), and
 * NodejsFunction bundling skipped (`aws:cdk:bundling-stacks: []`) so no esbuild runs per test.
 */
export function synthTestStack(
  opts: {
    nag?: boolean;
    bundle?: boolean;
    /** The monitoring props; a function gets the user's stack, to make their own resources (a topic) in. */
    monitoring?: TaskMonitoringProps | ((network: Stack) => TaskMonitoringProps);
  } = {},
) {
  const app = new App({
    context: opts.bundle ? {} : { 'aws:cdk:bundling-stacks': [] },
  });
  const network = new Stack(app, 'Network', { env: TEST_ENV });
  const vpc = new Vpc(network, 'Vpc', {
    maxAzs: 2,
    natGateways: 1,
    subnetConfiguration: [
      { name: 'public', subnetType: SubnetType.PUBLIC },
      { name: 'private', subnetType: SubnetType.PRIVATE_WITH_EGRESS },
    ],
  });
  Validations.of(vpc).acknowledge({
    id: 'AwsSolutions::AwsSolutions-VPC7',
    reason: 'the test stands in for the user VPC, whose flow logs are theirs to configure',
  });
  const sourcePassword = Secret.fromSecretCompleteArn(network, 'SourcePassword', SOURCE_SECRET_ARN);
  const stack = new RedisDtsStack(app, 'RedisDtsTest', {
    env: TEST_ENV,
    vpc,
    replicatorPasswords: { source: sourcePassword },
    ...(opts.monitoring
      ? { monitoring: typeof opts.monitoring === 'function' ? opts.monitoring(network) : opts.monitoring }
      : {}),
  });
  if (opts.nag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack, network, vpc, sourcePassword };
}

/** The state machine definition of a template synthesized by synthTestStack. */
export function definitionOf(template: Record<string, unknown>): Definition {
  return definitionFromTemplate(template, TEST_ENV);
}

export type { Definition, StateJson };

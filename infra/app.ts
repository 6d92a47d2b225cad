import { App, Validations } from 'aws-cdk-lib/core';
import { AwsSolutionsChecks } from 'cdk-nag';
import { RedisDtsStack } from './redis-dts-stack.ts';

/**
 * `npx cdk synth` (cdk.json runs this file with Node's type stripping). Environment-agnostic unless
 * CDK_DEFAULT_ACCOUNT/REGION are set; nothing is looked up, so synth works offline.
 */
const app = new App();
const alarmEmail = app.node.tryGetContext('alarmEmail') as string | undefined;
new RedisDtsStack(app, String(app.node.tryGetContext('stackName') ?? 'RedisDts'), {
  ...(alarmEmail ? { monitoring: { alarmEmail } } : {}),
  env: process.env.CDK_DEFAULT_ACCOUNT
    ? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION }
    : undefined,
  description: 'redis-dts: Redis data transmission orchestrated by Step Functions',
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();

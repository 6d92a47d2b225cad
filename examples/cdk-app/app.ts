/**
 * A user's own CDK app that adds redis-dts next to its new cache: a Valkey replication group in the
 * app's VPC, the migration workers' security group admitted on the cache's port, the caches' AUTH tokens
 * in Secrets Manager under `redis-dts/` (the only secrets the workers may read), and alarms mailed to the
 * on-call address. `cdk synth --app 'node --conditions development examples/cdk-app/app.ts'` in this
 * checkout; in an app that installed redis-dts, `import { RedisDts } from 'redis-dts/cdk'` as below.
 */
import { fileURLToPath } from 'node:url';
import { Port, SecurityGroup, Vpc } from 'aws-cdk-lib/aws-ec2';
import { CfnReplicationGroup, CfnSubnetGroup } from 'aws-cdk-lib/aws-elasticache';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { App, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib/core';
import type { Construct } from 'constructs';
import { RedisDts } from 'redis-dts/cdk';

const CACHE_PORT = 6379;

export class CacheMigrationStack extends Stack {
  readonly dts: RedisDts;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    const vpc = new Vpc(this, 'Vpc', { maxAzs: 2, natGateways: 1 });

    const workers = new SecurityGroup(this, 'MigrationWorkers', {
      vpc,
      description: 'redis-dts Lambdas and replicator',
      allowAllOutbound: true,
    });
    const cacheGroup = new SecurityGroup(this, 'CacheSecurityGroup', {
      vpc,
      description: 'orders cache (new)',
    });
    cacheGroup.addIngressRule(workers, Port.tcp(CACHE_PORT), 'redis-dts writes into the new cache');

    // The new cache's AUTH token; the old cache's already exists (created with its cluster).
    const newToken = new Secret(this, 'NewCacheToken', {
      secretName: 'redis-dts/orders-new',
      generateSecretString: { excludePunctuation: true, passwordLength: 32 },
    });
    const oldToken = Secret.fromSecretNameV2(this, 'OldCacheToken', 'redis-dts/orders-old');

    const subnets = new CfnSubnetGroup(this, 'CacheSubnets', {
      description: 'orders cache (new)',
      subnetIds: vpc.privateSubnets.map((s) => s.subnetId),
    });
    const cache = new CfnReplicationGroup(this, 'Cache', {
      replicationGroupDescription: 'orders cache (new)',
      engine: 'valkey',
      engineVersion: '8.0',
      cacheNodeType: 'cache.r7g.large',
      numNodeGroups: 1,
      replicasPerNodeGroup: 1,
      automaticFailoverEnabled: true,
      multiAzEnabled: true,
      port: CACHE_PORT,
      transitEncryptionEnabled: true,
      atRestEncryptionEnabled: true,
      authToken: newToken.secretValue.unsafeUnwrap(),
      cacheSubnetGroupName: subnets.ref,
      securityGroupIds: [cacheGroup.securityGroupId],
    });

    this.dts = new RedisDts(this, 'Migration', {
      vpc,
      securityGroups: [workers],
      replicatorPasswords: { source: oldToken, target: newToken },
      monitoring: { alarmEmail: 'oncall@example.com' },
    });

    new CfnOutput(this, 'TargetHost', { value: cache.attrPrimaryEndPointAddress });
    new CfnOutput(this, 'StateMachineArn', { value: this.dts.stateMachine.stateMachineArn });
    new CfnOutput(this, 'DashboardName', { value: this.dts.monitoring.dashboard.dashboardName });
  }
}

export function buildApp(app = new App()): { app: App; stack: CacheMigrationStack } {
  return { app, stack: new CacheMigrationStack(app, 'CacheMigration') };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) buildApp().app.synth();

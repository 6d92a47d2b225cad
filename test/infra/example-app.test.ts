import { Match, Template } from 'aws-cdk-lib/assertions';
import { App } from 'aws-cdk-lib/core';
import { beforeAll, describe, expect, test } from 'vitest';
import { buildApp } from '../../examples/cdk-app/app.ts';

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

let template: Template;
let resources: Resources;

// The README's "In your own CDK app" example, which imports the construct as `redis-dts/cdk` (the
// package's exports), synthesized as the user's app would be (bundling skipped, as in the other tests).
beforeAll(() => {
  const { stack } = buildApp(new App({ context: { 'aws:cdk:bundling-stacks': [] } }));
  template = Template.fromStack(stack);
  resources = template.toJSON().Resources as Resources;
});

const idOf = (type: string, pattern: RegExp) => {
  const ids = Object.keys(resources).filter((id) => resources[id]!.Type === type && pattern.test(id));
  expect(ids, `${type} ${pattern}`).toHaveLength(1);
  return ids[0]!;
};

describe("examples/cdk-app: redis-dts beside the user's own cache", () => {
  test('the workers run in the security group the app passed, which the cache admits on its port', () => {
    const workers = idOf('AWS::EC2::SecurityGroup', /^MigrationWorkers/);
    const cacheGroup = idOf('AWS::EC2::SecurityGroup', /^CacheSecurityGroup/);
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: { 'Fn::GetAtt': [cacheGroup, 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [workers, 'GroupId'] },
      FromPort: 6379,
      ToPort: 6379,
    });
    const fns = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(fns.length).toBeGreaterThan(5);
    for (const fn of fns) {
      expect((fn.Properties.VpcConfig as { SecurityGroupIds: unknown }).SecurityGroupIds).toEqual([
        { 'Fn::GetAtt': [workers, 'GroupId'] },
      ]);
    }
    // No security group of redis-dts' own: the app's is the only one the workers use.
    expect(Object.keys(resources).filter((id) => /WorkerSecurityGroup/.test(id))).toEqual([]);
  });

  test("the replicator gets both caches' tokens as ECS secrets, never in its environment", () => {
    const newToken = idOf('AWS::SecretsManager::Secret', /^NewCacheToken/);
    const [task] = Object.values(resources).filter((r) => r.Type === 'AWS::ECS::TaskDefinition');
    const [container] = task!.Properties.ContainerDefinitions as {
      Secrets: { Name: string; ValueFrom: unknown }[];
      Environment?: { Name: string }[];
    }[];
    const secrets = Object.fromEntries(container!.Secrets.map((s) => [s.Name, JSON.stringify(s.ValueFrom)]));
    expect(secrets.REDIS_DTS_TARGET_PASSWORD).toBe(JSON.stringify({ Ref: newToken }));
    expect(secrets.REDIS_DTS_SOURCE_PASSWORD).toMatch(/secret:redis-dts\/orders-old/);
    expect(JSON.stringify(container!.Environment ?? [])).not.toMatch(/PASSWORD/);
  });

  test('the cache is encrypted in transit with the token redis-dts reads, and alarms mail the on-call address', () => {
    template.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
      Engine: 'valkey',
      TransitEncryptionEnabled: true,
      AuthToken: Match.anyValue(),
    });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
    template.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });
});

import { Template } from 'aws-cdk-lib/assertions';
import { App, Validations } from 'aws-cdk-lib/core';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { RedisDtsStack } from '../../infra/redis-dts-stack.ts';
import { TEST_ENV } from './synth-stack.ts';

function synth(context: Record<string, unknown>): Template {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], ...context } });
  const stack = new RedisDtsStack(app, 'RedisDtsVpcTest', { env: TEST_ENV });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return Template.fromStack(stack);
}

function vpcConfigs(t: Template): { SubnetIds: unknown[]; SecurityGroupIds: unknown[] }[] {
  return Object.values(t.findResources('AWS::Lambda::Function')).map(
    (r) =>
      (r as { Properties: { VpcConfig: { SubnetIds: unknown[]; SecurityGroupIds: unknown[] } } }).Properties
        .VpcConfig,
  );
}

describe('the VPC', () => {
  it('comes from context without any lookup: subnets and security groups as given', () => {
    const t = synth({
      vpcId: 'vpc-0123456789abcdef0',
      availabilityZones: 'eu-west-1a,eu-west-1b',
      privateSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2',
      securityGroupIds: 'sg-0123456789abcdef0',
    });
    t.resourceCountIs('AWS::EC2::VPC', 0);
    t.resourceCountIs('AWS::EC2::SecurityGroup', 0);
    const configs = vpcConfigs(t);
    expect(configs.length).toBeGreaterThan(0);
    for (const c of configs) {
      expect(c.SubnetIds).toEqual(['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2']);
      expect(c.SecurityGroupIds).toEqual(['sg-0123456789abcdef0']);
    }
  });

  it('without context, is a VPC of the stack with flow logs, and passes cdk-nag', () => {
    const t = synth({});
    t.resourceCountIs('AWS::EC2::VPC', 1);
    t.resourceCountIs('AWS::EC2::FlowLog', 1);
    t.resourceCountIs('AWS::EC2::NatGateway', 1);
    t.resourceCountIs('AWS::EC2::SecurityGroup', 1);
    for (const c of vpcConfigs(t))
      expect(JSON.stringify(c.SubnetIds)).toMatch(/PrivateSubnet1.*PrivateSubnet2/);
  });

  it('a vpcId without its subnets is an error naming the missing context', () => {
    expect(() => synth({ vpcId: 'vpc-0123456789abcdef0', availabilityZones: 'eu-west-1a' })).toThrow(
      /context privateSubnetIds is required with vpcId/,
    );
  });
});

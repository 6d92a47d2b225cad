import { type ISecurityGroup, type IVpc, SecurityGroup, Vpc } from 'aws-cdk-lib/aws-ec2';
import type { Construct } from 'constructs';

/**
 * The user's VPC from CDK context, without any lookup (synth stays offline):
 *   -c vpcId=vpc-0abc -c availabilityZones=eu-west-1a,eu-west-1b
 *   -c privateSubnetIds=subnet-1,subnet-2 [-c securityGroupIds=sg-1,sg-2]
 * Absent vpcId: undefined, and the stack creates its own VPC (see RedisDtsStack).
 */
export function vpcFromContext(
  scope: Construct,
): { vpc: IVpc; securityGroups?: ISecurityGroup[] } | undefined {
  const vpcId = context(scope, 'vpcId');
  if (vpcId.length === 0) return undefined;
  const vpc = Vpc.fromVpcAttributes(scope, 'ContextVpc', {
    vpcId: vpcId[0]!,
    availabilityZones: required(scope, 'availabilityZones'),
    privateSubnetIds: required(scope, 'privateSubnetIds'),
  });
  const sgIds = context(scope, 'securityGroupIds');
  if (sgIds.length === 0) return { vpc };
  return {
    vpc,
    securityGroups: sgIds.map((id, i) =>
      SecurityGroup.fromSecurityGroupId(scope, `ContextSecurityGroup${i}`, id),
    ),
  };
}

/** A context value as a list: `a,b` on the command line, or a JSON array in cdk.json. */
function context(scope: Construct, key: string): string[] {
  const v: unknown = scope.node.tryGetContext(key);
  if (v === undefined || v === null || v === '') return [];
  if (Array.isArray(v)) return v.map(String);
  return String(v)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function required(scope: Construct, key: string): string[] {
  const v = context(scope, key);
  if (v.length === 0) throw new Error(`context ${key} is required with vpcId (e.g. -c ${key}=a,b)`);
  return v;
}

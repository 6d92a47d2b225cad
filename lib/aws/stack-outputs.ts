import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DtsError } from '../errors.ts';

/** What `redis-dts start --stack-name` needs from the deployed stack (infra/redis-dts-stack.ts outputs). */
export interface StackOutputs {
  stateMachineArn: string;
  tableName?: string;
}

/**
 * Reads the stack's outputs with CloudFormation DescribeStacks. The caller maps SDK errors (no stack,
 * no credentials, access denied) to one-line messages.
 */
export async function readStackOutputs(stackName: string, region: string | undefined): Promise<StackOutputs> {
  const client = new CloudFormationClient(region ? { region } : {});
  try {
    const out = await client.send(new DescribeStacksCommand({ StackName: stackName }));
    const outputs = Object.fromEntries(
      (out.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']),
    );
    const stateMachineArn = outputs.StateMachineArn;
    if (!stateMachineArn) {
      throw new DtsError(
        'NOT_A_REDIS_DTS_STACK',
        `stack ${stackName} has no StateMachineArn output`,
        'name the stack deployed from this project (npx cdk deploy prints it; the default is RedisDts)',
      );
    }
    return { stateMachineArn, ...(outputs.TableName ? { tableName: outputs.TableName } : {}) };
  } finally {
    client.destroy();
  }
}

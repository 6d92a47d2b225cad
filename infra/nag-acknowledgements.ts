import { Stack, Validations } from 'aws-cdk-lib/core';
import type { IConstruct } from 'constructs';
import type { RedisDts } from './redis-dts.ts';

const NAG = 'AwsSolutions::AwsSolutions';

/**
 * The cdk-nag (AwsSolutions) findings this stack accepts, each acknowledged for the exact finding
 * (cdk-nag v3 has no bulk form) on the construct it concerns, with its reason.
 */
export function acknowledgeAcceptedFindings(dts: RedisDts): void {
  const stack = Stack.of(dts);
  const secretsWildcard = `${NAG}-IAM5[Resource::${nagText(stack, dts.secretArns)}]`;
  const secretsReason =
    'Secret ARNs end in a random suffix, so reads are limited to the configured name prefix with a wildcard';
  const xrayReason = 'X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permissions';

  for (const fn of [...Object.values(dts.functions), dts.cutOverFunction]) {
    for (const policy of ['AWSLambdaBasicExecutionRole', 'AWSLambdaVPCAccessExecutionRole']) {
      ack(
        fn,
        `${NAG}-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/${policy}]`,
        'AWS-maintained policy for the function logs and its VPC network interfaces only',
      );
    }
    ack(fn, `${NAG}-IAM5[Resource::*]`, xrayReason);
  }
  for (const fn of [
    dts.functions.precheck,
    dts.functions.captureStart,
    dts.functions.planUnits,
    dts.functions.copyChunk,
    dts.functions.incrementalWindow,
    dts.functions.verify,
    dts.functions.cleanup,
  ]) {
    ack(fn, secretsWildcard, secretsReason);
  }

  ack(
    dts.replicatorTask,
    `${NAG}-ECS2`,
    'The environment holds the table name and the memory budget, no secret; passwords are ECS secrets',
  );
  ack(dts.replicatorTask, secretsWildcard, secretsReason);
  ack(
    dts.replicatorTask,
    `${NAG}-IAM5[Resource::*]`,
    'ecr:GetAuthorizationToken has no resource-level permissions',
  );

  const machine = dts.stateMachine;
  ack(machine, `${NAG}-IAM5[Resource::*]`, `${xrayReason}; CloudWatch Logs delivery APIs neither`);
  for (const fn of Object.values(dts.functions)) {
    ack(
      machine,
      `${NAG}-IAM5[Resource::${nagText(stack, fn.functionArn)}:*]`,
      'Invoking a function also needs its versions (<arn>:*)',
    );
  }
  ack(
    machine,
    `${NAG}-IAM5[Resource::${nagText(stack, dts.replicatorTaskArns)}]`,
    'Stopping and describing the replicator tasks it starts: their ids are unknown in advance; limited to the cluster',
  );
}

/** A resource as cdk-nag names it in a finding: `<Ref>` and `<LogicalId.Attr>` for tokens, joins flattened. */
function nagText(stack: Stack, value: string): string {
  const render = (v: unknown): string => {
    if (typeof v === 'string') return v;
    const o = v as Record<string, unknown>;
    if (Array.isArray(o['Fn::Join'])) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map(render).join(sep);
    }
    if (typeof o.Ref === 'string') return `<${o.Ref}>`;
    if (Array.isArray(o['Fn::GetAtt'])) return `<${(o['Fn::GetAtt'] as string[]).join('.')}>`;
    return JSON.stringify(v);
  };
  return render(stack.resolve(value));
}

function ack(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

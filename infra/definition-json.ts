import { App } from 'aws-cdk-lib/core';
import { RedisDtsStack } from './redis-dts-stack.ts';

/** Amazon States Language as the template holds it, parsed. */
export interface StateJson {
  Type: string;
  Next?: string;
  End?: boolean;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  Choices?: { Next: string; [k: string]: unknown }[];
  Default?: string;
  Catch?: { ErrorEquals: string[]; Next: string; ResultPath?: string }[];
  Retry?: { ErrorEquals: string[]; MaxAttempts?: number }[];
  ItemProcessor?: Definition;
  [k: string]: unknown;
}

export interface Definition {
  StartAt: string;
  States: Record<string, StateJson>;
}

const LOCAL_ENV = { account: '000000000000', region: 'local' };

/**
 * The task state machine's definition, synthesized in-process exactly as `cdk synth` builds it (no
 * bundling, no lookups: a placeholder VPC), for the local runner: the same states, transitions,
 * retries and catches as on AWS.
 */
export function synthTaskDefinition(): Definition {
  const app = new App({
    context: {
      'aws:cdk:bundling-stacks': [],
      vpcId: 'vpc-00000000000000000',
      availabilityZones: 'local-a',
      privateSubnetIds: 'subnet-00000000000000000',
      securityGroupIds: 'sg-00000000000000000',
    },
  });
  const stack = new RedisDtsStack(app, 'RedisDtsLocal', { env: LOCAL_ENV });
  return definitionFromTemplate(app.synth().getStackByName(stack.stackName).template);
}

/**
 * The definition in a synthesized template, with CloudFormation tokens made readable: a function's
 * ARN becomes `lambdaArnOf(logicalId)`, other `{"Fn::GetAtt": [X, A]}` `<X.A>`, `{"Ref": X}` `<X>`.
 */
export function definitionFromTemplate(template: Record<string, unknown>, env = LOCAL_ENV): Definition {
  const resources = template.Resources as Record<
    string,
    { Type: string; Properties: Record<string, unknown> }
  >;
  const machine = Object.values(resources).find((r) => r.Type === 'AWS::StepFunctions::StateMachine');
  if (!machine) throw new Error('the template has no state machine');
  const body = machine.Properties.DefinitionString as string | { 'Fn::Join': [string, unknown[]] };
  if (typeof body === 'string') return JSON.parse(body) as Definition;
  const [sep, parts] = body['Fn::Join'];
  return JSON.parse(parts.map((p) => readable(p, resources, env)).join(sep)) as Definition;
}

/** The ARN a Lambda Task state names in a definition from `definitionFromTemplate`. */
export function lambdaArnOf(logicalId: string, env = LOCAL_ENV): string {
  return `arn:aws:lambda:${env.region}:${env.account}:function:${logicalId}`;
}

function readable(
  part: unknown,
  resources: Record<string, { Type: string }>,
  env: { account: string; region: string },
): string {
  if (typeof part === 'string') return part;
  const p = part as Record<string, unknown>;
  if (Array.isArray(p['Fn::GetAtt'])) {
    const [id, attr] = p['Fn::GetAtt'] as [string, string];
    if (attr === 'Arn' && resources[id]?.Type === 'AWS::Lambda::Function') return lambdaArnOf(id, env);
    return `<${id}.${attr}>`;
  }
  if (typeof p.Ref === 'string') return p.Ref === 'AWS::Partition' ? 'aws' : `<${p.Ref}>`;
  return `<${JSON.stringify(part).replace(/"/g, "'")}>`;
}

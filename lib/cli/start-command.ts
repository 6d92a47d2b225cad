import { readFileSync } from 'node:fs';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { awsCallError } from '../aws/aws-call-error.ts';
import { readStackOutputs, type StackOutputs } from '../aws/stack-outputs.ts';
import { DtsError, isDtsError } from '../errors.ts';
import { defaultTaskId, parseTaskSpec, type TaskSpec } from '../task/spec.ts';
import { HELP } from './help.ts';
import { noPositionals, parseFlags } from './task-options.ts';
import { UsageError } from './usage-error.ts';

const OPTIONS = {
  input: { type: 'string' },
  'state-machine-arn': { type: 'string' },
  'stack-name': { type: 'string' },
  region: { type: 'string' },
  name: { type: 'string' },
  'endpoint-url': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const STATE_MACHINE_ARN = /^arn:(aws[a-z-]*):states:([a-z0-9-]+):(\d{12}):stateMachine:([^:\s]+)$/;

const OUTPUTS_HINT =
  "the stack's StateMachineArn output: aws cloudformation describe-stacks --stack-name RedisDts " +
  '--query "Stacks[0].Outputs[?OutputKey==\'StateMachineArn\'].OutputValue" --output text';

/**
 * `redis-dts start`: starts the deployed state machine with a task spec. The spec is validated here,
 * in AWS mode, before anything is sent, so a typo costs no execution and a plain password never reaches
 * the execution history.
 */
export async function startCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, OPTIONS, 'start');
  noPositionals(positionals, 'start');
  if (values.help) {
    process.stdout.write(HELP.start!);
    return 0;
  }
  if (values.input === undefined) {
    throw new UsageError('--input FILE is required: the task spec as JSON (- reads it from stdin)', 'start');
  }
  if (values['state-machine-arn'] !== undefined && values['stack-name'] !== undefined) {
    throw new UsageError('give --state-machine-arn or --stack-name, not both', 'start');
  }
  if (values['state-machine-arn'] === undefined && values['stack-name'] === undefined) {
    throw new UsageError(
      `--state-machine-arn ARN or --stack-name NAME is required: ${OUTPUTS_HINT}`,
      'start',
    );
  }
  let arnText = values['state-machine-arn'];
  let tableName: string | undefined;
  if (arnText === undefined) {
    const stack = await stackOutputsOf(values['stack-name']!, values.region);
    arnText = stack.stateMachineArn;
    tableName = stack.tableName;
  }
  const arn = parseStateMachineArn(arnText);
  if (values.region !== undefined && values.region !== arn.region) {
    throw new UsageError(
      `--region ${values.region} differs from the region of the state machine ARN (${arn.region})`,
      'start',
    );
  }

  let raw: unknown;
  let spec: TaskSpec;
  try {
    raw = readInput(values.input);
    spec = parseTaskSpec(raw, { mode: 'aws' });
  } catch (e) {
    // A bad input is a usage problem (exit 2) like a bad flag, but it keeps its own fix line.
    if (!isDtsError(e)) throw e;
    process.stderr.write(`error: ${e.message}\nfix: ${e.fix}\n`);
    return 2;
  }
  const endpoint = values['endpoint-url'];
  const client = new SFNClient({ region: arn.region, ...(endpoint !== undefined ? { endpoint } : {}) });
  try {
    const out = await client.send(
      new StartExecutionCommand({
        stateMachineArn: arnText,
        input: JSON.stringify({ spec: raw }),
        ...(values.name !== undefined ? { name: values.name } : {}),
      }),
    );
    const executionArn = out.executionArn ?? '(no execution ARN in the reply)';
    const taskId = spec.taskId ?? defaultTaskId(spec);
    const lines = [`started  ${executionArn}`];
    if (arn.partition === 'aws') lines.push(`console  ${consoleUrl(arn.region, executionArn)}`);
    lines.push(
      `follow   redis-dts status ${taskId} --table ${tableName ?? '<TableName output of the stack>'} --region ${arn.region}`,
    );
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } catch (e) {
    throw awsCallError(e, {
      service: 'Step Functions',
      actions: ['states:StartExecution'],
      resource: arnText,
      endpoint: endpoint ?? `states.${arn.region}.amazonaws.com`,
      known: {
        StateMachineDoesNotExist: [
          `state machine ${arnText} does not exist`,
          `check the ARN: ${OUTPUTS_HINT} (and that the stack is deployed in ${arn.region})`,
        ],
        StateMachineDeleting: [
          `state machine ${arnText} is being deleted`,
          'deploy the stack again (npx cdk deploy) and use its new StateMachineArn output',
        ],
        InvalidArn: [`Step Functions does not accept the ARN ${arnText}`, `check the ARN: ${OUTPUTS_HINT}`],
        ExecutionAlreadyExists: [
          `an execution named '${values.name}' already exists on this state machine`,
          'choose another --name, or omit it to get a generated one',
        ],
        InvalidName: [
          `--name '${values.name}' is not a valid execution name`,
          'use 1..80 characters: letters, digits, - and _',
        ],
        ExecutionLimitExceeded: [
          'too many executions of this state machine are running',
          'wait for some to finish, or stop them (redis-dts stop TASK-ID --table …)',
        ],
        InvalidExecutionInput: [
          'Step Functions refused the input',
          'keep the spec under 256 KB of JSON (it holds no data, only settings)',
        ],
      },
    });
  } finally {
    client.destroy();
  }
}

/** The stack's outputs, with CloudFormation's errors as one line each. */
async function stackOutputsOf(stackName: string, region: string | undefined): Promise<StackOutputs> {
  try {
    return await readStackOutputs(stackName, region);
  } catch (e) {
    if (isDtsError(e)) throw e;
    throw awsCallError(e, {
      service: 'CloudFormation',
      actions: ['cloudformation:DescribeStacks'],
      resource: `stack ${stackName}`,
      endpoint: `cloudformation.${region ?? process.env.AWS_REGION ?? '<region>'}.amazonaws.com`,
      known: {
        ValidationError: [
          `stack ${stackName} does not exist in ${region ?? process.env.AWS_REGION ?? 'the default region'}`,
          'check the name (npx cdk deploy prints it; the default is RedisDts) and --region',
        ],
      },
    });
  }
}

interface StateMachineArn {
  partition: string;
  region: string;
}

function parseStateMachineArn(text: string): StateMachineArn {
  const m = STATE_MACHINE_ARN.exec(text.trim());
  if (!m) {
    throw new UsageError(
      `--state-machine-arn '${text}': expected arn:aws:states:<region>:<account>:stateMachine:<name>`,
      'start',
    );
  }
  return { partition: m[1]!, region: m[2]! };
}

function readInput(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (e) {
    throw new DtsError(
      'BAD_TASK_SPEC',
      `cannot read --input ${path}: ${(e as Error).message}`,
      'give a readable JSON file, or - with the JSON on stdin',
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new DtsError(
      'BAD_TASK_SPEC',
      `--input ${path} is not JSON: ${(e as Error).message}`,
      'see examples/task-aws.json and schema/task-spec.schema.json',
    );
  }
}

function consoleUrl(region: string, executionArn: string): string {
  return `https://${region}.console.aws.amazon.com/states/home?region=${region}#/v2/executions/details/${executionArn}`;
}

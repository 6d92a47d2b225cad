import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freshProgress } from '../../lib/fullsync/copy-unit.ts';
import { createDynamoClient } from '../../lib/state/dynamo-client.ts';
import { type EmbeddedDynamo, startEmbeddedDynamo } from '../../lib/state/embedded-dynamo.ts';
import { TaskStore } from '../../lib/state/task-store.ts';
import { runCli } from '../support/cli.ts';

// No test reaches AWS: Step Functions is a loopback server (or a closed port), DynamoDB is dynalite.
const ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:RedisDts-tasks';
const EXECUTION_ARN = 'arn:aws:states:us-east-1:123456789012:execution:RedisDts-tasks:run-1';
const EXAMPLE = new URL('../../examples/task-aws.json', import.meta.url);
const FAKE_AWS = {
  AWS_ACCESS_KEY_ID: 'AKIDTEST',
  AWS_SECRET_ACCESS_KEY: 'test-secret',
  AWS_REGION: 'us-east-1',
};
const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:redis-dts/src-AbCdEf';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A stand-in for Step Functions on loopback: records each request and answers with `reply`. */
class FakeStepFunctions {
  readonly requests: Received[] = [];
  reply: { status: number; headers?: Record<string, string>; body: unknown } = { status: 200, body: {} };
  private readonly server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      this.requests.push({ headers: req.headers, body });
      res.writeHead(this.reply.status, {
        'content-type': 'application/x-amz-json-1.0',
        ...this.reply.headers,
      });
      res.end(JSON.stringify(this.reply.body));
    });
  });

  async listen(): Promise<string> {
    await new Promise<void>((done) => this.server.listen(0, '127.0.0.1', done));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((done) => this.server.close(() => done()));
  }

  answerError(type: string, message: string): void {
    this.reply = { status: 400, headers: { 'x-amzn-ErrorType': type }, body: { __type: type, message } };
  }
}

/** CloudFormation (Query protocol, XML) on loopback: answers every request with `status` and `xml`. */
async function startFakeCloudFormation(
  status: number,
  xml: string,
): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      requests.push(body);
      res.writeHead(status, { 'content-type': 'text/xml' });
      res.end(xml);
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise((done) => server.close(() => done())),
  };
}

function describeStacksXml(name: string, outputs: Record<string, string>): string {
  const members = Object.entries(outputs)
    .map(([k, v]) => `<member><OutputKey>${k}</OutputKey><OutputValue>${v}</OutputValue></member>`)
    .join('');
  return (
    '<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult>' +
    `<Stacks><member><StackName>${name}</StackName><StackStatus>CREATE_COMPLETE</StackStatus>` +
    `<CreationTime>2026-11-25T00:00:00Z</CreationTime><Outputs>${members}</Outputs></member></Stacks>` +
    '</DescribeStacksResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></DescribeStacksResponse>'
  );
}

/** A loopback port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

let dir: string;
let sfn: FakeStepFunctions;
let endpoint: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'redis-dts-start-'));
  sfn = new FakeStepFunctions();
  endpoint = await sfn.listen();
});
afterAll(async () => {
  await sfn.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  sfn.requests.length = 0;
  sfn.reply = { status: 200, body: {} };
});

function specFile(name: string, spec: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof spec === 'string' ? spec : JSON.stringify(spec));
  return path;
}

function start(args: string[], env: Record<string, string> = FAKE_AWS) {
  return runCli(['start', ...args], env);
}

describe('redis-dts start: input checked before AWS is called', () => {
  it('refuses a spec with a plain password and a bad port, one line per problem, exit 2', async () => {
    const input = specFile('bad.json', {
      source: { url: 'redis://10.0.0.5:6379', password: 'Sup3r-s3cret' },
      target: { host: '10.0.1.7', port: 'abc' },
    });
    const r = await start(['--input', input, '--state-machine-arn', ARN, '--endpoint-url', endpoint]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: invalid task spec \(2 problems\):$/m);
    expect(r.stderr).toMatch(/^ {2}target\.port: expected an integer 1\.\.65535, got "abc"$/m);
    expect(r.stderr).toMatch(/^ {2}source\.password: passwords must come from Secrets Manager on AWS/m);
    expect(r.stderr).toMatch(/^fix: /m);
    expect(r.stderr).not.toContain('Sup3r-s3cret');
    expect(sfn.requests).toHaveLength(0);
  });

  it('refuses input that is not JSON, exit 2', async () => {
    const input = specFile('not-json.json', '{"source": ');
    const r = await start(['--input', input, '--state-machine-arn', ARN, '--endpoint-url', endpoint]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: --input .*not-json\.json is not JSON: /m);
    expect(sfn.requests).toHaveLength(0);
  });

  it('requires --state-machine-arn or --stack-name and says where to find them', async () => {
    const r = await start(['--input', EXAMPLE.pathname]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^error: --state-machine-arn ARN or --stack-name NAME is required: the stack's StateMachineArn output/m,
    );
    expect(r.stderr).toMatch(/^fix: see 'redis-dts start --help'$/m);
  });

  it('requires --input', async () => {
    const r = await start(['--state-machine-arn', ARN]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: --input FILE is required/m);
  });

  it('refuses an ARN that is not a state machine', async () => {
    const r = await start(['--input', EXAMPLE.pathname, '--state-machine-arn', EXECUTION_ARN]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: --state-machine-arn '.*': expected arn:aws:states:/m);
  });
});

describe('redis-dts start against a Step Functions endpoint', () => {
  it('sends {"spec": <the file>} and prints the execution, its console URL and how to follow it', async () => {
    sfn.reply = { status: 200, body: { executionArn: EXECUTION_ARN, startDate: 1_780_000_000 } };
    const input = specFile('good.json', {
      taskId: 'orders',
      source: { url: 'redis://10.0.0.5:6379', passwordSecretArn: SECRET_ARN },
      target: { host: '10.0.1.7', port: 6379 },
      syncType: 'full',
    });
    const r = await start([
      '--input',
      input,
      '--state-machine-arn',
      ARN,
      '--endpoint-url',
      endpoint,
      '--name',
      'orders-1',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`started  ${EXECUTION_ARN}\n`);
    expect(r.stdout).toContain(
      `console  https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/${EXECUTION_ARN}\n`,
    );
    expect(r.stdout).toMatch(/^follow {3}redis-dts status orders --table .* --region us-east-1$/m);

    expect(sfn.requests).toHaveLength(1);
    const [request] = sfn.requests;
    expect(request!.headers['x-amz-target']).toBe('AWSStepFunctions.StartExecution');
    const body = JSON.parse(request!.body) as { stateMachineArn: string; name: string; input: string };
    expect(body.stateMachineArn).toBe(ARN);
    expect(body.name).toBe('orders-1');
    expect(JSON.parse(body.input)).toEqual({ spec: JSON.parse(readFileSync(input, 'utf8')) });
    expect(request!.body).not.toMatch(/"password(Env)?\\?"/);
  });

  it('sends the example spec unchanged', async () => {
    sfn.reply = { status: 200, body: { executionArn: EXECUTION_ARN, startDate: 1_780_000_000 } };
    const r = await start([
      '--input',
      EXAMPLE.pathname,
      '--state-machine-arn',
      ARN,
      '--endpoint-url',
      endpoint,
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const body = JSON.parse(sfn.requests[0]!.body) as { input: string; name?: string };
    expect(body.name).toBeUndefined();
    expect(JSON.parse(body.input)).toEqual({ spec: JSON.parse(readFileSync(EXAMPLE, 'utf8')) });
  });

  it('--stack-name reads the state machine and table from the stack outputs (CloudFormation DescribeStacks)', async () => {
    const cfn = await startFakeCloudFormation(
      200,
      describeStacksXml('RedisDts', { StateMachineArn: ARN, TableName: 'RedisDts-tasks-table' }),
    );
    try {
      sfn.reply = { status: 200, body: { executionArn: EXECUTION_ARN, startDate: 1_780_000_000 } };
      const r = await runCli(
        ['start', '--input', EXAMPLE.pathname, '--stack-name', 'RedisDts', '--endpoint-url', endpoint],
        { ...FAKE_AWS, AWS_ENDPOINT_URL_CLOUDFORMATION: cfn.url },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(cfn.requests[0]).toContain('Action=DescribeStacks');
      expect(cfn.requests[0]).toContain('StackName=RedisDts');
      expect(JSON.parse(sfn.requests.at(-1)!.body).stateMachineArn).toBe(ARN);
      expect(r.stdout).toContain('--table RedisDts-tasks-table');
    } finally {
      await cfn.close();
    }
  });

  it('--stack-name of a stack that does not exist: one line naming it, nothing started', async () => {
    const cfn = await startFakeCloudFormation(
      400,
      '<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type>' +
        '<Code>ValidationError</Code><Message>Stack with id Nope does not exist</Message></Error>' +
        '<RequestId>r1</RequestId></ErrorResponse>',
    );
    try {
      const before = sfn.requests.length;
      const r = await runCli(
        ['start', '--input', EXAMPLE.pathname, '--stack-name', 'Nope', '--endpoint-url', endpoint],
        { ...FAKE_AWS, AWS_ENDPOINT_URL_CLOUDFORMATION: cfn.url },
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error: stack Nope does not exist in us-east-1$/m);
      expect(r.stderr).toMatch(/^fix: check the name/m);
      expect(sfn.requests.length).toBe(before);
    } finally {
      await cfn.close();
    }
  });

  it('maps StateMachineDoesNotExist to a message naming the ARN and how to find the right one', async () => {
    sfn.answerError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${ARN}'`);
    const r = await start([
      '--input',
      EXAMPLE.pathname,
      '--state-machine-arn',
      ARN,
      '--endpoint-url',
      endpoint,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: state machine ${ARN} does not exist\n`);
    expect(r.stderr).toMatch(/^fix: check the ARN: the stack's StateMachineArn output: aws cloudformation/m);
    expect(r.stderr).not.toMatch(/ {4}at /);
  });

  it('maps AccessDeniedException to the permission it needs', async () => {
    sfn.answerError(
      'AccessDeniedException',
      'User: arn:aws:iam::123456789012:user/dev is not authorized to perform: states:StartExecution',
    );
    const r = await start([
      '--input',
      EXAMPLE.pathname,
      '--state-machine-arn',
      ARN,
      '--endpoint-url',
      endpoint,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: AWS denied states:StartExecution on arn:aws:states:.*not authorized/m);
    expect(r.stderr).toMatch(
      /^fix: grant states:StartExecution on arn:aws:states:\S+ to the identity you use/m,
    );
  });

  it('maps ExecutionAlreadyExists to choosing another --name', async () => {
    sfn.answerError('ExecutionAlreadyExists', 'Execution Already Exists');
    const r = await start([
      ...['--input', EXAMPLE.pathname, '--state-machine-arn', ARN, '--endpoint-url', endpoint],
      ...['--name', 'taken'],
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: an execution named 'taken' already exists/m);
    expect(r.stderr).toMatch(/^fix: choose another --name/m);
  });

  it('says when the endpoint cannot be reached', async () => {
    const closed = `http://127.0.0.1:${await closedPort()}`;
    const r = await start([
      '--input',
      EXAMPLE.pathname,
      '--state-machine-arn',
      ARN,
      '--endpoint-url',
      closed,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: cannot reach Step Functions at ${closed} (ECONNREFUSED)\n`);
    expect(r.stderr).toMatch(/^fix: check the network path to AWS/m);
  });

  it('says how to configure credentials when there are none', async () => {
    const none = join(dir, 'no-such-aws-file');
    const r = await start(
      ['--input', EXAMPLE.pathname, '--state-machine-arn', ARN, '--endpoint-url', endpoint],
      {
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_SESSION_TOKEN: '',
        AWS_PROFILE: '',
        AWS_SHARED_CREDENTIALS_FILE: none,
        AWS_CONFIG_FILE: none,
        AWS_WEB_IDENTITY_TOKEN_FILE: '',
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '',
        AWS_CONTAINER_CREDENTIALS_FULL_URI: '',
        AWS_EC2_METADATA_DISABLED: 'true',
      },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: no AWS credentials found/m);
    expect(r.stderr).toMatch(/^fix: configure AWS credentials \(AWS_PROFILE/m);
    expect(sfn.requests).toHaveLength(0);
  });
});

describe('status, list and stop --table (the deployed table, here dynalite)', () => {
  const TABLE = 'RedisDts-RedisDtsTaskTable-TEST';
  let dynamo: EmbeddedDynamo;
  let store: TaskStore;
  let env: Record<string, string>;

  beforeAll(async () => {
    dynamo = await startEmbeddedDynamo();
    store = new TaskStore(createDynamoClient({ endpoint: dynamo.endpoint }), TABLE);
    await store.ensureTable();
    const now = new Date().toISOString();
    await store.putTask({
      taskId: 'orders',
      name: 'orders cache',
      spec: {},
      status: 'running',
      phase: 'fullsync',
      createdAt: now,
      updatedAt: now,
    });
    await store.putCheckpoint(
      'orders',
      { ...freshProgress(), keysWritten: 1234, unitId: 'db0', sourceDb: 0, targetDb: 0, updatedAt: now },
      undefined,
    );
    // The SDK's service-specific endpoint variable sends "real" DynamoDB calls to dynalite.
    env = { ...FAKE_AWS, AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint };
  });
  afterAll(async () => {
    await dynamo.close();
  });
  afterEach(async () => {
    await store.clearStop('orders');
  });

  it('status TASK-ID shows the task and its units', async () => {
    const r = await runCli(['status', 'orders', '--table', TABLE, '--region', 'us-east-1'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^task {5}orders \(orders cache\)$/m);
    expect(r.stdout).toMatch(/db0 .* 1,234 keys written/);
  });

  it('list shows the tasks of the table', async () => {
    const r = await runCli(['list', '--table', TABLE], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^orders\trunning\tfullsync\t/m);
  });

  it('stop sets the flag the running task polls', async () => {
    const r = await runCli(['stop', 'orders', '--table', TABLE, '--region', 'us-east-1'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/stop requested for 'orders'.*start the same spec again to resume/);
    expect(await store.isStopRequested('orders')).toBe(true);
  });

  it('names a missing task and a missing table', async () => {
    const task = await runCli(['status', 'nope', '--table', TABLE], env);
    expect(task.code).toBe(1);
    expect(task.stderr).toContain(`error: no task 'nope' in table ${TABLE}\n`);
    const table = await runCli(['list', '--table', 'no-such-table', '--region', 'us-east-1'], env);
    expect(table.code).toBe(1);
    expect(table.stderr).toContain('error: no DynamoDB table no-such-table in us-east-1\n');
    expect(table.stderr).toMatch(/^fix: pass the stack's TableName output as --table/m);
  });

  it('refuses --table with --state-dir, and --region without --table', async () => {
    const both = await runCli(['list', '--table', TABLE, '--state-dir', dir], env);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^error: --table and --state-dir exclude each other/m);
    const region = await runCli(['list', '--region', 'us-east-1', '--state-dir', dir], env);
    expect(region.code).toBe(2);
    expect(region.stderr).toMatch(/^error: --region goes with --table/m);
  });
});

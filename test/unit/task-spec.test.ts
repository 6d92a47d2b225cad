import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { specInput } from '../../lib/cli/spec-input.ts';
import { DtsError } from '../../lib/errors.ts';
import { resolveEndpoint } from '../../lib/task/resolve-endpoint.ts';
import {
  defaultTaskId,
  generateTaskName,
  type ParseTaskSpecOptions,
  parseTaskSpec,
  redactSpec,
  renderTaskSpecJsonSchema,
  SCHEMA_FILE,
  type TaskSpec,
  TaskSpecSchema,
  taskSpecJsonSchema,
} from '../../lib/task/spec.ts';
import { editDistance, suggestion, TaskSpecError } from '../../lib/task/spec-errors.ts';

const SECRET = 'Sup3r-s3cret';
const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:redis-src-AbCdEf';
const BASE = { source: { url: 'redis://src-host:6379' }, target: { url: 'redis://dst-host:6380' } };

/** The base spec with some fields replaced (undefined removes a field). */
function spec(over: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { ...BASE, ...over };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}

function problemsOf(input: unknown, opts?: ParseTaskSpecOptions): readonly string[] {
  try {
    parseTaskSpec(input, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(TaskSpecError);
    return (e as TaskSpecError).problems;
  }
  throw new Error('the spec was accepted');
}

describe('parseTaskSpec rejects', () => {
  const ENDPOINT = 'an endpoint object: {"url": "redis://host:port"} or {"host": "…", "port": 6379}';
  const cases: Array<[string, unknown, string[], ParseTaskSpecOptions?]> = [
    [
      'a port that is not a number',
      spec({ source: { host: 'src-host', port: 'abc' } }),
      ['source.port: expected an integer 1..65535, got "abc"'],
    ],
    [
      'a port out of range',
      spec({ target: { host: 'h', port: 70000 } }),
      ['target.port: expected an integer 1..65535, got 70000'],
    ],
    [
      'an unknown syncType',
      spec({ syncType: 'ful' }),
      ['syncType: expected one of full+incremental, full, incremental, got "ful"'],
    ],
    ['a db out of range', spec({ dbs: [0, 1, 300] }), ['dbs[2]: expected an integer 0..255, got 300']],
    ['a fractional db', spec({ dbs: [1.5] }), ['dbs[0]: expected an integer 0..255, got 1.5']],
    ['a db listed twice', spec({ dbs: [3, 1, 3] }), ['dbs: expected each db once, got 3 more than once']],
    [
      'renamed replication commands that are not one word',
      spec({ source: { url: 'redis://src-host:6379', psyncCommand: 'psync ec', replconfCommand: '' } }),
      [
        'source.psyncCommand: expected the name PSYNC answers to on the source: one word of 1..128 printable characters, no spaces, got "psync ec"',
        'source.replconfCommand: expected the name REPLCONF answers to on the source: one word of 1..128 printable characters, no spaces, got ""',
      ],
    ],
    [
      'a renamed PSYNC on the target, which is never replicated from',
      spec({ target: { url: 'redis://dst-host:6380', psyncCommand: 'psync-ec-1' } }),
      ['target.psyncCommand: unknown field'],
    ],
    [
      'an empty dbs',
      spec({ dbs: [] }),
      ['dbs: expected at least one db (omit dbs to copy every non-empty db), got an empty array'],
    ],
    ['dbs as a string', spec({ dbs: '0,1' }), ['dbs: expected an array of db numbers 0..255, got "0,1"']],
    [
      'a misspelt top-level field',
      spec({ syncTyp: 'full' }),
      ['syncTyp: unknown field (did you mean syncType?)'],
    ],
    [
      'a field in another case style',
      spec({ sync_type: 'full' }),
      ['sync_type: unknown field (did you mean syncType?)'],
    ],
    ['an unknown field nothing like a known one', spec({ colour: 'blue' }), ['colour: unknown field']],
    [
      'a misspelt nested field',
      spec({ verify: { round: 2 } }),
      ['verify.round: unknown field (did you mean rounds?)'],
    ],
    [
      'a misspelt field three levels down',
      spec({ incremental: { heartbeat: { intervalMS: 500, enable: false } } }),
      [
        'incremental.heartbeat.intervalMS: unknown field (did you mean intervalMs?)',
        'incremental.heartbeat.enable: unknown field (did you mean enabled?)',
      ],
    ],
    [
      'a misspelt endpoint field',
      spec({ source: { host: 'h', prot: 6380 } }),
      ['source.prot: unknown field (did you mean port?)'],
    ],
    [
      'host fields beside a url',
      spec({ source: { url: 'redis://h:1', port: 6380, tls: true } }),
      [
        'source.port: not allowed with url (give either url or host/port/tls/username)',
        'source.tls: not allowed with url (give either url or host/port/tls/username)',
      ],
    ],
    [
      'both url and host',
      spec({ target: { url: 'redis://h', host: 'h' } }),
      ['target: expected either url or host, got url and host'],
    ],
    [
      'neither url nor host, with a misspelt host',
      spec({ target: { hots: 'h', port: 1 } }),
      ['target: expected url or host, got neither', 'target.hots: unknown field (did you mean host?)'],
    ],
    ['a missing endpoint', { source: BASE.source }, [`target: expected ${ENDPOINT}, got nothing`]],
    [
      'an endpoint given as a string',
      spec({ source: 'src-host:6379' }),
      [`source: expected ${ENDPOINT}, got "src-host:6379"`],
    ],
    [
      'a URL that does not parse',
      spec({ source: { url: 'redis://h:abc' } }),
      [
        'source.url: expected a URL redis://[user:password@]host[:port][/db] or rediss://… for TLS ' +
          '(has a port that is not a number), got "redis://h:***"',
      ],
    ],
    [
      'a bracketed IPv6 host',
      spec({ source: { host: '[::1]' } }),
      ['source.host: expected a host name or IP address (IPv6 without brackets), got "[::1]"'],
    ],
    [
      'two password sources',
      spec({ source: { host: 'h', password: SECRET, passwordEnv: 'SRC_PW' } }),
      [
        'source: expected at most one of password, passwordEnv, passwordSecretArn (or a password in url), ' +
          'got password and passwordEnv',
      ],
    ],
    [
      'a password in the URL and a secret ARN',
      spec({ target: { url: `redis://:${SECRET}@h`, passwordSecretArn: ARN } }),
      [
        'target: expected at most one of password, passwordEnv, passwordSecretArn (or a password in url), ' +
          'got a password in url and passwordSecretArn',
      ],
    ],
    [
      'a malformed secret ARN, without echoing it',
      spec({ source: { host: 'h', passwordSecretArn: SECRET } }),
      [
        'source.passwordSecretArn: expected a Secrets Manager secret ARN ' +
          '(arn:aws:secretsmanager:<region>:<account>:secret:<name>), got "***"',
      ],
    ],
    [
      'a password of the wrong type, without echoing it',
      spec({ source: { host: 'h', password: 12345678 } }),
      ['source.password: expected a non-empty string, got a number'],
    ],
    [
      'an invalid password variable name',
      spec({ source: { host: 'h', passwordEnv: 'MY-PW' } }),
      ['source.passwordEnv: expected the name of an environment variable (letters, digits and _), got "***"'],
    ],
    [
      'TLS options on a redis:// url',
      spec({ source: { url: 'redis://h', tlsCaFile: '/ca.pem' } }),
      ['source.tlsCaFile: needs a rediss:// url (TLS options do not turn TLS on for a redis:// url)'],
    ],
    [
      'TLS options with tls: false',
      spec({ target: { host: 'h', tls: false, tlsInsecure: true } }),
      ['target.tlsInsecure: contradicts tls: false (drop one of them)'],
    ],
    [
      'a plain password on AWS',
      spec({ source: { host: 'h', password: SECRET } }),
      ['source.password: passwords must come from Secrets Manager on AWS: use passwordSecretArn'],
      { mode: 'aws' },
    ],
    [
      'a password variable on AWS',
      spec({ target: { host: 'h', passwordEnv: 'DST_PW' } }),
      ['target.passwordEnv: passwords must come from Secrets Manager on AWS: use passwordSecretArn'],
      { mode: 'aws' },
    ],
    [
      'a password in the URL on AWS',
      spec({ source: { url: `redis://admin:${SECRET}@h:6379` } }),
      [
        'source.url: passwords must come from Secrets Manager on AWS: use passwordSecretArn ' +
          '(and remove the password from the URL)',
      ],
      { mode: 'aws' },
    ],
    [
      'two source dbs mapped to one target db',
      spec({ dbMap: { '0': 5, '1': 5, '2': 6 } }),
      ['dbMap: expected a different target db for each source db, got dbs 0 and 1 both mapped to 5'],
    ],
    [
      'a mapped db landing on an unmapped selected db',
      spec({ dbs: [0, 1], dbMap: { '0': 1 } }),
      [
        'dbMap: expected a different target db for each source db, got dbs 0 and 1 both mapped to 1 ' +
          '(db 1 is in dbs but not in dbMap)',
      ],
    ],
    [
      'a dbMap key that is not a db number',
      spec({ dbMap: { '256': 1, x: 2 } }),
      [
        'dbMap["256"]: expected a source db number "0".."255" as the key, got "256"',
        'dbMap.x: expected a source db number "0".."255" as the key, got "x"',
      ],
    ],
    [
      'a dbMap value out of range',
      spec({ dbMap: { '3': -1 } }),
      ['dbMap["3"]: expected an integer 0..255, got -1'],
    ],
    [
      'a boolean given as text',
      spec({ acknowledgeWarnings: 'yes' }),
      ['acknowledgeWarnings: expected true or false, got "yes"'],
    ],
    [
      'a sample rate of 0',
      spec({ verify: { sampleRate: 0 } }),
      ['verify.sampleRate: expected a number greater than 0 and at most 1, got 0'],
    ],
    [
      'too many verify rounds',
      spec({ verify: { rounds: 11 } }),
      ['verify.rounds: expected an integer 1..10, got 11'],
    ],
    [
      'too small chunks',
      spec({ fullSync: { chunkKeys: 5 } }),
      ['fullSync.chunkKeys: expected an integer 10..100000, got 5'],
    ],
    [
      'a negative throttle',
      spec({ throttle: { maxKeysPerSecond: -5 } }),
      ['throttle.maxKeysPerSecond: expected a number greater than 0, got -5'],
    ],
    [
      'an unknown incremental mode',
      spec({ incremental: { mode: 'ec2' } }),
      ['incremental.mode: expected one of fargate, lambda, got "ec2"'],
    ],
    [
      'an empty key prefix',
      spec({ keyFilter: { include: ['user:', ''] } }),
      ['keyFilter.include[1]: expected a non-empty key prefix, got ""'],
    ],
    [
      'a nested object given as an array',
      spec({ verify: [] }),
      ['verify: expected an object, got an empty array'],
    ],
    [
      'a taskId with spaces',
      spec({ taskId: 'my task' }),
      ['taskId: expected an id of 1..64 letters, digits, _, . or -, got "my task"'],
    ],
    ['a spec that is not an object', [BASE], ['task spec: expected a JSON object, got an array']],
    ['a spec given as a string', JSON.stringify(BASE), ['task spec: expected a JSON object, got a string']],
    [
      'several problems at once, each on its own line',
      { source: { host: 'h', port: 0 }, syncType: 'ful', dbs: [300], syncTyp: 1 },
      [
        'source.port: expected an integer 1..65535, got 0',
        `target: expected ${ENDPOINT}, got nothing`,
        'syncType: expected one of full+incremental, full, incremental, got "ful"',
        'dbs[0]: expected an integer 0..255, got 300',
        'syncTyp: unknown field (did you mean syncType?)',
      ],
    ],
  ];

  it.each(cases)('%s', (_name, input, lines, opts) => {
    expect(problemsOf(input, opts)).toEqual(lines);
  });

  it('throws a DtsError whose message lists every problem and whose fix names the schema', () => {
    let error: unknown;
    try {
      parseTaskSpec(spec({ syncType: 'ful', dbs: [300] }));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DtsError);
    const e = error as TaskSpecError;
    expect(e.code).toBe('BAD_TASK_SPEC');
    expect(e.message.split('\n')).toEqual([
      'invalid task spec (2 problems):',
      '  syncType: expected one of full+incremental, full, incremental, got "ful"',
      '  dbs[0]: expected an integer 0..255, got 300',
    ]);
    expect(e.fix).toContain(SCHEMA_FILE);
    expect(e.fix).not.toContain('\n');
    // The minimal example in the fix is itself a valid spec.
    const example = e.fix.slice(e.fix.indexOf('{'));
    expect(() => parseTaskSpec(JSON.parse(example))).not.toThrow();
  });

  it('never shows a password, wherever it was put', () => {
    const input = {
      source: { url: `redis://admin:${SECRET}@h:abc` },
      target: { host: 'h', password: SECRET, passwordEnv: SECRET, passwordSecretArn: SECRET, port: 'x' },
      name: `redis://:${SECRET}@h`,
      verify: `redis://:${SECRET}@h`,
    };
    for (const mode of ['local', 'aws'] as const) {
      let message = '';
      try {
        parseTaskSpec(input, { mode });
      } catch (e) {
        message = `${(e as DtsError).message}\n${(e as DtsError).fix}`;
      }
      expect(message).toContain('invalid task spec');
      expect(message).not.toContain(SECRET);
    }
  });

  it('accepts passwords in AWS mode only from Secrets Manager', () => {
    const aws = spec({
      source: { url: 'redis://admin@h', passwordSecretArn: ARN },
      target: { host: 'h', passwordSecretArn: 'arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x' },
    });
    expect(parseTaskSpec(aws, { mode: 'aws' }).source).toEqual({
      url: 'redis://admin@h',
      passwordSecretArn: ARN,
    });
  });
});

describe('parseTaskSpec accepts', () => {
  it('a minimal spec and applies every default', () => {
    expect(parseTaskSpec(BASE)).toEqual({
      source: { url: 'redis://src-host:6379' },
      target: { url: 'redis://dst-host:6380' },
      syncType: 'full+incremental',
      existingKeys: 'block',
      fullSync: { reader: 'auto', chunkKeys: 1000, crossVersion: 'logical', checkpointIntervalMs: 250 },
      incremental: {
        mode: 'fargate',
        reader: 'psync',
        setNotifyKeyspaceEvents: false,
        heartbeat: { enabled: true, prefix: 'redis-dts:heartbeat:', intervalMs: 1000 },
        until: 'stopped',
        onBacklogLost: 'fail',
      },
      verify: {
        mode: 'full',
        rounds: 3,
        sampleRate: 1,
        ttlToleranceMs: 100,
        duringIncremental: { intervalMs: 300_000, sampleRate: 0.01 },
      },
      limits: {},
      events: { caughtUp: { lagMs: 1000, forMs: 10_000 } },
      acknowledgeWarnings: false,
    } satisfies TaskSpec);
  });

  it('a host endpoint and fills in the default port', () => {
    const out = parseTaskSpec(
      spec({ source: { host: '::1' }, target: { host: 'dst', port: 7000, tls: true } }),
    );
    expect(out.source).toEqual({ host: '::1', port: 6379 });
    expect(out.target).toEqual({ host: 'dst', port: 7000, tls: true });
  });

  it('partial nested settings and fills in the rest', () => {
    const out = parseTaskSpec(
      spec({
        incremental: { heartbeat: { enabled: false } },
        verify: { mode: 'exists' },
        fullSync: { maxInFlightBytes: 1 << 26 },
      }),
    );
    expect(out.incremental.heartbeat).toEqual({
      enabled: false,
      prefix: 'redis-dts:heartbeat:',
      intervalMs: 1000,
    });
    expect(out.verify).toEqual({
      mode: 'exists',
      rounds: 3,
      sampleRate: 1,
      ttlToleranceMs: 100,
      duringIncremental: { intervalMs: 300_000, sampleRate: 0.01 },
    });
    expect(out.fullSync).toEqual({
      reader: 'auto',
      chunkKeys: 1000,
      maxInFlightBytes: 1 << 26,
      crossVersion: 'logical',
      checkpointIntervalMs: 250,
    });
  });

  it('every field at once, unchanged', () => {
    const full = {
      name: 'nightly copy',
      taskId: 'cache-a_to.b',
      source: {
        url: 'rediss://dts@src:6380',
        passwordEnv: 'SRC_PW',
        tlsCaFile: '/etc/ca.pem',
        tlsInsecure: false,
      },
      target: { host: 'dst', port: 6381, tls: true, username: 'writer', password: SECRET, tlsInsecure: true },
      syncType: 'full',
      existingKeys: 'overwrite',
      dbs: [0, 1, 2],
      dbMap: { '0': 3, '1': 4, '2': 5 },
      keyFilter: { include: ['user:'], exclude: ['user:tmp:'] },
      throttle: { maxKeysPerSecond: 5000, maxBytesPerSecond: 1.5e7 },
      fullSync: {
        reader: 'rdb',
        chunkKeys: 500,
        maxInFlightBytes: 1_000_000,
        crossVersion: 'refuse',
        checkpointIntervalMs: 0,
      },
      incremental: {
        mode: 'lambda',
        reader: 'psync',
        setNotifyKeyspaceEvents: true,
        heartbeat: { enabled: true, prefix: 'hb:', intervalMs: 250 },
        until: 'caught-up',
        onBacklogLost: 'resync',
      },
      verify: {
        mode: 'length',
        rounds: 1,
        sampleRate: 0.25,
        ttlToleranceMs: 0,
        duringIncremental: { intervalMs: 60_000, sampleRate: 0.5 },
      },
      limits: { memoryBudget: '256mb' },
      events: { file: 'events.jsonl', caughtUp: { lagMs: 250, forMs: 5000 } },
      acknowledgeWarnings: true,
    };
    expect(parseTaskSpec(full)).toEqual(full);
  });

  it('a memory budget as bytes or as a size, and names a bad one', () => {
    expect(parseTaskSpec(spec({ limits: { memoryBudget: 1 << 30 } })).limits.memoryBudget).toBe(1 << 30);
    expect(parseTaskSpec(spec({ limits: { memoryBudget: '1.5GiB' } })).limits.memoryBudget).toBe('1.5GiB');
    for (const bad of ['lots', '1kb', 1000, -5]) {
      expect(() => parseTaskSpec(spec({ limits: { memoryBudget: bad } }))).toThrow(
        /limits\.memoryBudget: expected bytes \(an integer, or a string like "128mb".*at least 16777216, got/,
      );
    }
  });

  it('dbMap entries that swap dbs or map a db to itself', () => {
    expect(parseTaskSpec(spec({ dbs: [0, 1, 2], dbMap: { '0': 1, '1': 0, '2': 2 } })).dbMap).toEqual({
      '0': 1,
      '1': 0,
      '2': 2,
    });
  });

  it('renamed replication commands on the source, by URL or by host, and carries them to the endpoint', () => {
    const byUrl = parseTaskSpec(
      spec({
        source: { url: 'redis://src-host:6379', psyncCommand: 'psync-ec-1a2b', replconfCommand: 'rc-1' },
      }),
    );
    expect(resolveEndpoint(byUrl.source, 'source').replicationCommands).toEqual({
      psync: 'psync-ec-1a2b',
      replconf: 'rc-1',
    });
    const byHost = parseTaskSpec(spec({ source: { host: 'src-host', psyncCommand: 'psync-ec-1a2b' } }));
    expect(resolveEndpoint(byHost.source, 'source')).toMatchObject({
      host: 'src-host',
      replicationCommands: { psync: 'psync-ec-1a2b' },
    });
    expect(resolveEndpoint(parseTaskSpec(BASE).source, 'source').replicationCommands).toBeUndefined();
  });

  it('--source-psync-command and --source-replconf-command as the spec fields', () => {
    const input = specInput({
      source: 'redis://src-host:6379',
      target: 'redis://dst-host:6380',
      'source-psync-command': 'psync-ec-9',
      'source-replconf-command': 'replconf-ec-9',
    });
    expect(parseTaskSpec(input).source).toEqual({
      url: 'redis://src-host:6379',
      psyncCommand: 'psync-ec-9',
      replconfCommand: 'replconf-ec-9',
    });
    expect(parseTaskSpec(input).target).toEqual({ url: 'redis://dst-host:6380' });
  });

  it('--cross-version as fullSync.crossVersion, and names a bad mode', () => {
    const base = { source: 'redis://src-host:6379', target: 'redis://dst-host:6380' };
    const input = specInput({ ...base, 'cross-version': 'refuse', 'chunk-keys': '200' });
    expect(parseTaskSpec(input).fullSync).toMatchObject({ crossVersion: 'refuse', chunkKeys: 200 });
    expect(parseTaskSpec(specInput(base)).fullSync.crossVersion).toBe('logical');
    expect(() => parseTaskSpec(specInput({ ...base, 'cross-version': 'restore' }))).toThrow(
      /fullSync\.crossVersion/,
    );
  });

  it('the same input through TaskSpecSchema directly', () => {
    expect(TaskSpecSchema.safeParse(BASE).success).toBe(true);
    expect(TaskSpecSchema.safeParse(spec({ dbMap: { '0': 1, '1': 1 } })).success).toBe(false);
  });
});

describe('redactSpec', () => {
  it('drops plain passwords and masks URL passwords, keeping the other password sources', () => {
    const parsed = parseTaskSpec(
      spec({
        source: { url: `redis://admin:${SECRET}@src:6379/0` },
        target: { host: 'dst', password: SECRET, tls: true },
      }),
    );
    const redacted = redactSpec(parsed);
    expect(JSON.stringify(redacted)).not.toContain(SECRET);
    expect(redacted.source).toEqual({ url: 'redis://admin:***@src:6379/0' });
    expect(redacted.target).toEqual({ host: 'dst', port: 6379, tls: true });
    // The caller's spec is left alone: it still needs the password to connect.
    expect(parsed.target.password).toBe(SECRET);

    const bySecret = redactSpec(
      parseTaskSpec(
        spec({ source: { host: 'h', passwordEnv: 'SRC_PW' }, target: { host: 'd', passwordSecretArn: ARN } }),
      ),
    );
    expect(bySecret.source.passwordEnv).toBe('SRC_PW');
    expect(bySecret.target.passwordSecretArn).toBe(ARN);
  });
});

describe('task names and ids', () => {
  const now = new Date('2026-11-25T23:59:00Z');

  it('names a task after its endpoints and the UTC date', () => {
    expect(generateTaskName(parseTaskSpec(spec({ target: { host: 'dst-host', port: 6380 } })), now)).toBe(
      'src-host:6379 → dst-host:6380 2026-11-25',
    );
    expect(
      generateTaskName(
        { source: { url: `redis://:${SECRET}@[::1]:7000` }, target: { host: '10.0.0.5' } },
        now,
      ),
    ).toBe('[::1]:7000 → 10.0.0.5:6379 2026-11-25');
  });

  it('derives a taskId in the taskId alphabet', () => {
    expect(defaultTaskId(parseTaskSpec(BASE))).toBe('src-host-6379-to-dst-host-6380');
    expect(defaultTaskId({ source: { host: '::1', port: 1 }, target: { url: 'rediss://u:p@a.b:2' } })).toBe(
      '--1-1-to-a.b-2',
    );
  });

  it('keeps long derived ids within 64 characters and distinct', () => {
    const long = (n: number) => ({
      source: { host: `${'a'.repeat(60)}${n}.example` },
      target: { host: 'dst' },
    });
    const a = defaultTaskId(long(1));
    const b = defaultTaskId(long(2));
    expect(a).toMatch(/^[A-Za-z0-9_.-]{1,64}$/);
    expect(a).toHaveLength(64);
    expect(a).not.toBe(b);
    // A derived id is always a valid explicit taskId.
    expect(parseTaskSpec(spec({ taskId: a })).taskId).toBe(a);
  });
});

describe('suggestions', () => {
  it('measures edits, counting a swap of neighbours as one', () => {
    expect(editDistance('synctyp', 'synctype')).toBe(1);
    expect(editDistance('dbsmap', 'dbmap')).toBe(1);
    expect(editDistance('tsl', 'tls')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('suggests only close names', () => {
    expect(suggestion('tsl', ['tls', 'url'])).toBe(' (did you mean tls?)');
    expect(suggestion('DBMAP', ['dbs', 'dbMap'])).toBe(' (did you mean dbMap?)');
    expect(suggestion('zzz', ['tls', 'url'])).toBe('');
  });
});

describe('the JSON Schema', () => {
  const checkedIn = readFileSync(new URL(`../../${SCHEMA_FILE}`, import.meta.url), 'utf8');

  it(`is in step with the code (regenerate with: node bin/generate-schema.ts)`, () => {
    expect(checkedIn).toBe(renderTaskSpecJsonSchema());
  });

  it('is draft 2020-12 with a description on every field', () => {
    const schema = taskSpecJsonSchema();
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    const undescribed: string[] = [];
    const walk = (node: unknown, at: string) => {
      if (typeof node !== 'object' || node === null) return;
      const n = node as Record<string, unknown>;
      for (const [name, prop] of Object.entries(
        (n.properties ?? {}) as Record<string, Record<string, unknown>>,
      )) {
        if (typeof prop.description !== 'string' || prop.description.length < 10)
          undescribed.push(`${at}.${name}`);
        walk(prop, `${at}.${name}`);
      }
      for (const key of ['oneOf', 'anyOf', 'allOf'] as const) {
        for (const [i, sub] of ((n[key] ?? []) as unknown[]).entries()) walk(sub, `${at}.${key}[${i}]`);
      }
      for (const [name, def] of Object.entries((n.$defs ?? {}) as Record<string, unknown>))
        walk(def, `$defs.${name}`);
    };
    walk(schema, '');
    expect(undescribed).toEqual([]);
  });

  // zod's own JSON Schema reader serves as the validator, so the check needs no extra dependency.
  const fromFile = z.fromJSONSchema(JSON.parse(checkedIn));

  it('accepts a valid spec', () => {
    const sample = spec({
      source: { host: 'src', port: 6380, passwordSecretArn: ARN },
      dbs: [0, 2],
      dbMap: { '2': 3 },
      verify: { sampleRate: 0.5 },
    });
    expect(fromFile.safeParse(sample).success).toBe(true);
  });

  it.each([
    ['an unknown field', spec({ syncTyp: 'full' })],
    ['url and host together', spec({ source: { url: 'redis://h', host: 'h' } })],
    ['a port out of range', spec({ target: { host: 'h', port: 0 } })],
    ['a repeated db', spec({ dbs: [1, 1] })],
    ['a dbMap key out of range', spec({ dbMap: { '256': 1 } })],
    ['a bad enum value', spec({ existingKeys: 'keep' })],
    ['a missing target', { source: BASE.source }],
  ])('rejects %s', (_name, bad) => {
    expect(fromFile.safeParse(bad).success).toBe(false);
    expect(() => parseTaskSpec(bad)).toThrow(TaskSpecError);
  });
});

import { isIP } from 'node:net';
import { z } from 'zod';
import { isDtsError } from '../errors.ts';
import { parseRedisUrl, redactUrl } from '../redis/url.ts';
import { always, flag, intIn, isRecord, lineIssue, text } from './spec-fields.ts';

// A source or destination endpoint of the task spec: a URL or host/port, where its password comes from, TLS.

export const DEFAULT_PORT = 6379;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
const HOST_NAME = /^[A-Za-z0-9._-]+$/;

const PASSWORD_FIELDS = ['password', 'passwordEnv', 'passwordSecretArn'] as const;

const passwordFields = {
  password: text()
    .optional()
    .meta({
      description:
        'The password itself. Local runs only (rejected on AWS, where it would be kept in the execution ' +
        'history: use passwordSecretArn). `user:password` names an ACL user when the endpoint gives no username. ' +
        'At most one of password, passwordEnv and passwordSecretArn.',
    }),
  passwordEnv: z
    .string({ error: 'the name of an environment variable (letters, digits and _)' })
    .regex(ENV_NAME, { error: 'the name of an environment variable (letters, digits and _)' })
    .optional()
    .meta({
      description:
        'Name of an environment variable holding the password (or `user:password` for an ACL user), ' +
        'read where the task runs. Local runs only (rejected on AWS: use passwordSecretArn). At most one of ' +
        'password, passwordEnv and passwordSecretArn.',
      examples: ['REDIS_DTS_SOURCE_PASSWORD'],
    }),
  passwordSecretArn: z
    .string({
      error: 'a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)',
    })
    .regex(SECRET_ARN, {
      error: 'a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)',
    })
    .optional()
    .meta({
      description:
        'ARN of an AWS Secrets Manager secret whose plain-text value is the password (or `user:password` for ' +
        'an ACL user). The way to give a password on AWS: only the ARN travels in the execution input. ' +
        'At most one of password, passwordEnv and passwordSecretArn.',
      examples: ['arn:aws:secretsmanager:us-east-1:123456789012:secret:redis-source-AbCdEf'],
    }),
};

const tlsFields = {
  tlsCaFile: text('a file path')
    .optional()
    .meta({
      description:
        'Path of a PEM file with the CA certificate that signed the server certificate, for servers whose ' +
        'certificate is not signed by a public CA. Needs TLS: a rediss:// url, or tls: true.',
    }),
  tlsInsecure: flag()
    .optional()
    .meta({
      description:
        'Accept any server certificate without checking it. For testing only: it lets anyone in the ' +
        'network path read the data. Needs TLS: a rediss:// url, or tls: true.',
    }),
};

const URL_WHAT = 'a URL redis://[user:password@]host[:port][/db] or rediss://… for TLS';

const UrlEndpointSchema = z
  .strictObject(
    {
      url: z
        .string({ error: URL_WHAT })
        .superRefine((url, ctx) => {
          const reason = urlProblem(url);
          if (reason !== undefined) ctx.addIssue({ code: 'custom', message: `${URL_WHAT} (${reason})` });
        })
        .meta({
          description:
            'Where the server is, as redis://[user:password@]host[:port][/db], or rediss://… for TLS ' +
            '(default port 6379). Percent-encode special characters in the user and password. A password ' +
            'here is a secret in the input: prefer passwordEnv locally and passwordSecretArn on AWS. The db ' +
            'in the path is ignored: dbs and dbMap choose the databases.',
          examples: ['redis://10.0.0.5:6379', 'rediss://default@my-cache.abc123.cache.amazonaws.com:6379'],
        }),
      ...passwordFields,
      ...tlsFields,
    },
    { error: 'an object' },
  )
  .meta({ title: 'Endpoint by URL', description: 'A Redis server named by a redis:// or rediss:// URL.' });

const HostEndpointSchema = z
  .strictObject(
    {
      host: z
        .string({ error: 'a host name or IP address' })
        .refine((h) => (h.includes(':') ? isIP(h) === 6 : HOST_NAME.test(h)), {
          error: 'a host name or IP address (IPv6 without brackets)',
        })
        .meta({
          description: 'Host name or IP address of the server (IPv6 without brackets, e.g. ::1).',
          examples: ['10.0.0.5', 'my-cache.abc123.ng.0001.use1.cache.amazonaws.com'],
        }),
      port: intIn(1, 65535).default(DEFAULT_PORT).meta({ description: 'TCP port of the server.' }),
      tls: flag()
        .optional()
        .meta({
          description:
            'Connect with TLS (in-transit encryption). tlsCaFile or tlsInsecure turn it on as well; false ' +
            'with either of them is a contradiction and rejected.',
        }),
      username: text()
        .optional()
        .meta({
          description:
            'ACL user to log in as (Redis 6+). Absent: the default user. The password comes from password, ' +
            'passwordEnv or passwordSecretArn.',
        }),
      ...passwordFields,
      ...tlsFields,
    },
    { error: 'an object' },
  )
  .meta({
    title: 'Endpoint by host',
    description: 'A Redis server named by host and port, with optional TLS and ACL user.',
  });

const ENDPOINT_WHAT = 'an endpoint object: {"url": "redis://host:port"} or {"host": "…", "port": 6379}';

export const EndpointSchema = z
  .xor([UrlEndpointSchema, HostEndpointSchema], { error: ENDPOINT_WHAT })
  .superRefine((_, ctx) => checkEndpoint(ctx.value, ctx), always)
  .meta({
    id: 'Endpoint',
    description:
      'A Redis server: either {"url": …} or {"host": …, "port": …}, plus at most one password source ' +
      '(password, passwordEnv, passwordSecretArn) and optional TLS settings.',
  });

const COMMAND_NAME = /^[!-~]{1,128}$/;

/** A name given to rename-command: one token of printable ASCII, no spaces or quotes to parse. */
const commandName = (original: string) => {
  const what = `the name ${original} answers to on the source: one word of 1..128 printable characters, no spaces`;
  return z.string({ error: what }).regex(COMMAND_NAME, { error: what });
};

const sourceReplicationFields = {
  psyncCommand: commandName('PSYNC')
    .optional()
    .meta({
      description:
        'The name PSYNC answers to on the source, where the provider renamed it (rename-command). ' +
        'ElastiCache: AWS support can enable replication to an external replica under an ' +
        'account-specific PSYNC name; give that name here. Used for the replication handshake, the ' +
        'capture of the start offset and the precheck. Absent: PSYNC.',
      examples: ['psync-ec-1a2b3c'],
    }),
  replconfCommand: commandName('REPLCONF')
    .optional()
    .meta({
      description:
        'The name REPLCONF answers to on the source, where the provider renamed it too (sent during ' +
        'the replication handshake and as the replica acknowledgements). Absent: REPLCONF.',
    }),
};

export const SourceEndpointSchema = z
  .xor(
    [
      UrlEndpointSchema.extend(sourceReplicationFields).meta({
        title: 'Source endpoint by URL',
        description: 'The source named by a redis:// or rediss:// URL, with renamed replication commands.',
      }),
      HostEndpointSchema.extend(sourceReplicationFields).meta({
        title: 'Source endpoint by host',
        description: 'The source named by host and port, with renamed replication commands.',
      }),
    ],
    { error: ENDPOINT_WHAT },
  )
  .superRefine((_, ctx) => checkEndpoint(ctx.value, ctx), always)
  .meta({
    id: 'SourceEndpoint',
    description:
      'The source: an Endpoint, plus the names of PSYNC and REPLCONF where the provider renamed them ' +
      '(psyncCommand, replconfCommand).',
  });

function urlProblem(url: string): string | undefined {
  try {
    // A stand-in password: a URL naming only a user is fine when the password comes from elsewhere.
    parseRedisUrl(url, 'source', { password: 'x' });
    return undefined;
  } catch (e) {
    if (!isDtsError(e)) throw e;
    // parseRedisUrl names the URL in its message; keep only the reason, the line shows the URL itself.
    const prefix = `source URL '${redactUrl(url.trim())}' `;
    if (e.message.startsWith(prefix)) return e.message.slice(prefix.length);
    return e.message.replace(/^source URL /, '');
  }
}

function urlHasPassword(url: unknown): boolean {
  if (typeof url !== 'string') return false;
  try {
    // Without a stand-in password, a lone userinfo word stays a username and only user:password counts.
    return parseRedisUrl(url, 'source', { password: '' }).password !== undefined;
  } catch {
    return false;
  }
}

function checkEndpoint(value: unknown, ctx: z.core.$RefinementCtx): void {
  if (!isRecord(value)) return;
  const sources: string[] = PASSWORD_FIELDS.filter((f) => value[f] !== undefined);
  if (urlHasPassword(value.url)) sources.unshift('a password in url');
  if (sources.length > 1) {
    ctx.addIssue({
      code: 'custom',
      message: 'at most one of password, passwordEnv, passwordSecretArn (or a password in url)',
      params: { got: sources.join(' and ') },
    });
  }
  const tlsOptions = (['tlsCaFile', 'tlsInsecure'] as const).filter(
    (f) => value[f] !== undefined && value[f] !== false,
  );
  if (tlsOptions.length === 0) return;
  if (typeof value.url === 'string' && !/^\s*rediss:\/\//i.test(value.url)) {
    for (const f of tlsOptions) {
      lineIssue(ctx, [f], 'needs a rediss:// url (TLS options do not turn TLS on for a redis:// url)');
    }
  } else if (value.url === undefined && value.tls === false) {
    for (const f of tlsOptions) lineIssue(ctx, [f], 'contradicts tls: false (drop one of them)');
  }
}

export function awsPasswordProblems(input: unknown): string[] {
  if (!isRecord(input)) return [];
  const problems: string[] = [];
  const advice = 'passwords must come from Secrets Manager on AWS: use passwordSecretArn';
  for (const role of ['source', 'target'] as const) {
    const ep = input[role];
    if (!isRecord(ep)) continue;
    if (urlHasPassword(ep.url))
      problems.push(`${role}.url: ${advice} (and remove the password from the URL)`);
    if (ep.password !== undefined) problems.push(`${role}.password: ${advice}`);
    if (ep.passwordEnv !== undefined) problems.push(`${role}.passwordEnv: ${advice}`);
  }
  return problems;
}

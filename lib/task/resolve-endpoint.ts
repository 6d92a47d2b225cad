import { DtsError } from '../errors.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { parseRedisUrl, passwordFromEnv } from '../redis/url.ts';
import type { EndpointSpec } from './spec.ts';

type Role = RedisEndpoint['role'];

/** Environment variables read when a spec names no password source: handy for local runs and CI. */
export const DEFAULT_PASSWORD_ENV: Record<Role, string> = {
  source: 'REDIS_DTS_SOURCE_PASSWORD',
  target: 'REDIS_DTS_TARGET_PASSWORD',
};

/**
 * Turns a spec's endpoint into where to connect and how to log in. Secrets Manager ARNs are resolved
 * by the AWS handlers before this is called (they pass `secretValue`); locally they cannot be.
 */
export function resolveEndpoint(spec: EndpointSpec, role: Role, secretValue?: string): RedisEndpoint {
  const ep = connectionOf(spec, role, secretValue);
  const names = {
    ...('psyncCommand' in spec && spec.psyncCommand !== undefined ? { psync: spec.psyncCommand } : {}),
    ...('replconfCommand' in spec && spec.replconfCommand !== undefined
      ? { replconf: spec.replconfCommand }
      : {}),
  };
  return Object.keys(names).length > 0 ? { ...ep, replicationCommands: names } : ep;
}

function connectionOf(spec: EndpointSpec, role: Role, secretValue: string | undefined): RedisEndpoint {
  const password = passwordOf(spec, role, secretValue);
  if ('url' in spec && spec.url !== undefined) {
    return parseRedisUrl(spec.url, role, {
      ...(password !== undefined ? { password } : {}),
      ...(spec.tlsCaFile !== undefined ? { tlsCaFile: spec.tlsCaFile } : {}),
      ...(spec.tlsInsecure !== undefined ? { tlsInsecure: spec.tlsInsecure } : {}),
    });
  }
  const s = spec as Extract<EndpointSpec, { host: string }>;
  const scheme = s.tls || s.tlsCaFile || s.tlsInsecure ? 'rediss' : 'redis';
  const host = s.host.includes(':') ? `[${s.host}]` : s.host;
  const user = s.username ? `${encodeURIComponent(s.username)}@` : '';
  return parseRedisUrl(`${scheme}://${user}${host}:${s.port ?? 6379}`, role, {
    ...(password !== undefined ? { password } : {}),
    ...(s.tlsCaFile !== undefined ? { tlsCaFile: s.tlsCaFile } : {}),
    ...(s.tlsInsecure !== undefined ? { tlsInsecure: s.tlsInsecure } : {}),
  });
}

function passwordOf(spec: EndpointSpec, role: Role, secretValue?: string): string | undefined {
  if (spec.password !== undefined) return spec.password;
  if (spec.passwordEnv !== undefined) return passwordFromEnv(spec.passwordEnv, role);
  if (spec.passwordSecretArn !== undefined) {
    if (secretValue !== undefined) return secretValue;
    throw new DtsError(
      'SECRET_NOT_RESOLVED',
      `${role}.passwordSecretArn can only be read on AWS`,
      `locally, give the password through ${DEFAULT_PASSWORD_ENV[role]} or ${role}.passwordEnv instead`,
    );
  }
  const fromDefault = process.env[DEFAULT_PASSWORD_ENV[role]];
  return fromDefault ? fromDefault : undefined;
}

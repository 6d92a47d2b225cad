import { DtsError } from '../errors.ts';
import { parseInfo } from '../redis/admin-client.ts';
import { describeEndpoint } from '../redis/endpoint.ts';
import type { RawConnection } from '../redis/raw-connection.ts';
import { RespError, type RespValue } from '../redis/resp.ts';
import { serverVersionOf } from '../redis/server-versions.ts';

/** What one server can answer, probed once: the verifier adapts instead of failing on older servers. */
export interface ServerCaps {
  /** redis_version; '' when INFO is not allowed. */
  version: string;
  /** Product and major.minor (server-versions.ts dumpFamily): servers of one family write the same DUMP bytes. */
  rdbFamily: string;
  clusterEnabled: boolean;
  /** Keys, and keys with an expiry, per db from INFO keyspace; undefined when INFO is not allowed. */
  keyspace: Record<number, { keys: number; expires: number }> | undefined;
  /** PEXPIRETIME (Redis 7.0+); otherwise PTTL and the local clock. */
  pexpiretime: boolean;
  /** MEMORY USAGE, which tells big keys before they are read; without it every key is compared in pages. */
  memoryUsage: boolean;
  /** SMISMEMBER / ZMSCORE (6.2+); otherwise one SISMEMBER / ZSCORE per member. */
  multiMember: boolean;
  /** Hash field expiries (HPEXPIRETIME, Redis 7.4+ / Valkey 9+), which HSCAN does not show. */
  fieldTtl: boolean;
}

/** A name in redis-dts' own namespace, so the probes read a key no one uses. */
const PROBE_KEY = 'redis-dts:tmp:verify-probe';

export async function probeServer(conn: RawConnection): Promise<ServerCaps> {
  const info = await conn.call(['INFO']).catch((e: unknown) => e);
  if (!(info instanceof Error) && info !== null && !Buffer.isBuffer(info) && typeof info !== 'string') {
    throw new DtsError(
      'PROTOCOL',
      `${describeEndpoint(conn.endpoint)}: unexpected INFO reply`,
      'report a bug',
    );
  }
  const fields = info instanceof Error || info === null ? {} : parseInfo(String(info));
  const version = fields.redis_version ?? '';
  const keyspace: Record<number, { keys: number; expires: number }> = {};
  for (const [name, value] of Object.entries(fields)) {
    const db = /^db(\d+)$/.exec(name);
    const keys = /(?:^|,)keys=(\d+)/.exec(value);
    // Without a count of expiring keys, assume some: the verifier then reads every key's expiry.
    const expires = /(?:^|,)expires=(\d+)/.exec(value);
    if (db && keys)
      keyspace[Number(db[1])] = { keys: Number(keys[1]), expires: expires ? Number(expires[1]) : 1 };
  }
  const [pexpiretime, memoryUsage, multiMember, fieldTtl] = await Promise.all([
    answers(conn, ['PEXPIRETIME', PROBE_KEY]),
    answers(conn, ['MEMORY', 'USAGE', PROBE_KEY]),
    answers(conn, ['SMISMEMBER', PROBE_KEY, 'x']),
    answers(conn, ['HPEXPIRETIME', PROBE_KEY, 'FIELDS', '1', 'x']),
  ]);
  return {
    version,
    rdbFamily: serverVersionOf(fields).dumpFamily,
    clusterEnabled: fields.cluster_enabled === '1',
    keyspace: info instanceof Error || info === null ? undefined : keyspace,
    pexpiretime,
    memoryUsage,
    multiMember,
    fieldTtl,
  };
}

/** True when the server runs the command (any reply but an error: unknown, renamed, or not permitted). */
async function answers(conn: RawConnection, command: string[]): Promise<boolean> {
  try {
    const reply: RespValue = await conn.call(command);
    return !(reply instanceof RespError);
  } catch (e) {
    if (e instanceof RespError) return false;
    throw e;
  }
}

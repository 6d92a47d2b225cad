import { type RedisProcess, type StartRedisOptions, startRedis } from './redis-server.ts';

/** The name DEBUG answers to on a managed-profile server: for the tests' own DEBUG DIGEST only. */
export const TEST_DEBUG_COMMAND = 'testdebug';

export interface ManagedProfile {
  /**
   * PSYNC on the server: `disabled` (ElastiCache/MemoryDB as a client sees them), or renamed to this
   * name (the account-specific name AWS support enables for a migration to an external replica).
   */
  psync: 'disabled' | { renamedTo: string };
  /** REPLCONF renamed too, where a provider does that. Default: left as it is. */
  replconf?: 'disabled' | { renamedTo: string };
}

/**
 * redis.conf lines that make a server look, from a client, like a managed service: CONFIG, SYNC,
 * REPLICAOF/SLAVEOF and MONITOR refused, PSYNC disabled or renamed, DEBUG only under a test-only name
 * (so a test can still prove exactness with DEBUG DIGEST; the product must never rely on it).
 */
export function managedConfigLines(profile: ManagedProfile): string[] {
  const rename = (command: string, to: 'disabled' | { renamedTo: string }) =>
    `rename-command ${command} ${to === 'disabled' ? '""' : to.renamedTo}`;
  return [
    rename('PSYNC', profile.psync),
    ...(profile.replconf ? [rename('REPLCONF', profile.replconf)] : []),
    'rename-command CONFIG ""',
    'rename-command SYNC ""',
    'rename-command REPLICAOF ""',
    'rename-command SLAVEOF ""',
    'rename-command MONITOR ""',
    `rename-command DEBUG ${TEST_DEBUG_COMMAND}`,
  ];
}

/** A real redis-server with a managed-service profile; compare.ts finds its DEBUG by itself. */
export function startManagedRedis(
  profile: ManagedProfile,
  options: StartRedisOptions = {},
): Promise<RedisProcess> {
  return startRedis({
    ...options,
    configLines: [...managedConfigLines(profile), ...(options.configLines ?? [])],
    debugCommand: TEST_DEBUG_COMMAND,
  });
}

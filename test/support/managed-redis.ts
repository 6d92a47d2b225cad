import { startPsyncRenameProxy } from './psync-rename-proxy.ts';
import {
  type RedisProcess,
  registerDebugCommand,
  type StartRedisOptions,
  startRedis,
} from './redis-server.ts';

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
 * REPLICAOF/SLAVEOF and MONITOR refused, PSYNC disabled, DEBUG only under a test-only name (so a test
 * can still prove exactness with DEBUG DIGEST; the product must never rely on it). A renamed PSYNC is
 * not a redis.conf line: see startManagedRedis.
 */
export function managedConfigLines(profile: ManagedProfile): string[] {
  const rename = (command: string, to: 'disabled' | { renamedTo: string }) =>
    `rename-command ${command} ${to === 'disabled' ? '""' : to.renamedTo}`;
  return [
    ...(profile.psync === 'disabled' ? [rename('PSYNC', 'disabled')] : []),
    ...(profile.replconf ? [rename('REPLCONF', profile.replconf)] : []),
    'rename-command CONFIG ""',
    'rename-command SYNC ""',
    'rename-command REPLICAOF ""',
    'rename-command SLAVEOF ""',
    'rename-command MONITOR ""',
    `rename-command DEBUG ${TEST_DEBUG_COMMAND}`,
  ];
}

/**
 * A real redis-server with a managed-service profile; compare.ts finds its DEBUG by itself. With PSYNC
 * renamed, `url` and `port` are those of a proxy that gives the server AWS' renamed PSYNC (see
 * psync-rename-proxy.ts: `rename-command` would turn it into SYNC); `cli()` talks to the server itself.
 */
export async function startManagedRedis(
  profile: ManagedProfile,
  options: StartRedisOptions = {},
): Promise<RedisProcess> {
  const server = await startRedis({
    ...options,
    configLines: [...managedConfigLines(profile), ...(options.configLines ?? [])],
    debugCommand: TEST_DEBUG_COMMAND,
  });
  if (profile.psync === 'disabled') return server;
  const proxy = await startPsyncRenameProxy(server, profile.psync.renamedTo);
  registerDebugCommand(proxy.port, TEST_DEBUG_COMMAND);
  return {
    ...server,
    port: proxy.port,
    url: server.url.replace(`:${server.port}`, `:${proxy.port}`),
    async stop() {
      registerDebugCommand(proxy.port, undefined);
      await proxy.close();
      await server.stop();
    },
  };
}

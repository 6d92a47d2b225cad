import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareServers } from '../support/compare.ts';
import { startManagedRedis, TEST_DEBUG_COMMAND } from '../support/managed-redis.ts';
import { type RedisProcess, serverMajor, startRedis } from '../support/redis-server.ts';
import { SERVER_BUILDS } from '../support/server-builds.ts';

async function refusal(server: RedisProcess, ...command: string[]): Promise<string> {
  const c = new Redis(server.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await c.call(command[0]!, ...command.slice(1));
    return 'accepted';
  } catch (e) {
    return (e as Error).message;
  } finally {
    c.disconnect();
  }
}

describe('managed-service profile (what ElastiCache/MemoryDB look like from a client)', () => {
  let managed: RedisProcess;
  let plain: RedisProcess;

  beforeAll(async () => {
    [managed, plain] = await Promise.all([
      startManagedRedis({ psync: { renamedTo: 'psync-ec-7f3a' } }),
      startRedis(),
    ]);
  });
  afterAll(async () => {
    await Promise.all([managed?.stop(), plain?.stop()]);
  });

  it('refuses CONFIG, SYNC, REPLICAOF, SLAVEOF, MONITOR, PSYNC and DEBUG by their names', async () => {
    for (const command of [
      ['CONFIG', 'GET', 'maxmemory'],
      ['SYNC'],
      ['REPLICAOF', 'NO', 'ONE'],
      ['SLAVEOF', 'NO', 'ONE'],
      ['MONITOR'],
      ['PSYNC', '?', '-1'],
      ['DEBUG', 'DIGEST'],
    ]) {
      expect(await refusal(managed, ...command), command.join(' ')).toMatch(/unknown command/);
    }
  });

  it('answers DEBUG DIGEST under the test-only name, and the comparison uses it', async () => {
    expect(await managed.cli(TEST_DEBUG_COMMAND, 'DIGEST')).toMatch(/^[0-9a-f]{40}$/);
    await managed.cli('SET', 'k', 'v');
    const unequal = await compareServers(managed.url, plain.url);
    expect(unequal.equal).toBe(false);
    expect(unequal.digests.source).not.toBe(unequal.digests.target);
    await plain.cli('SET', 'k', 'v');
    const equal = await compareServers(managed.url, plain.url);
    expect(equal.equal).toBe(true);
    expect(equal.digests.source).toBe(equal.digests.target);
  });
});

describe('server builds for the version matrix', () => {
  for (const build of SERVER_BUILDS) {
    it.skipIf(!build.present)(`${build.name} starts and reports its version`, async () => {
      const server = await startRedis({ binary: build.binary });
      try {
        expect(serverMajor(build.binary)).toBe(build.version[0]);
        const info = await server.cli('INFO', 'server');
        const version = /(?:redis|valkey)_version:(\d+)\.(\d+)/.exec(info);
        // Valkey 8 still reports redis_version 7.2.4 for clients; its own version is valkey_version.
        expect(version, info).not.toBeNull();
        expect(await server.cli('DEBUG', 'DIGEST')).toMatch(/^[0-9a-f]{40}$/);
      } finally {
        await server.stop();
      }
    });
  }
});

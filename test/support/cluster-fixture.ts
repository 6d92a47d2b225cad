import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import {
  type RedisClusterProcess,
  type StartRedisClusterOptions,
  startRedisCluster,
} from './redis-cluster.ts';

/** Clusters and state dirs a test file starts, all removed by `cleanup` (its afterAll). */
export function clusterFixture(statePrefix: string) {
  const dirs: string[] = [];
  const clusters: RedisClusterProcess[] = [];
  return {
    async cluster(o: StartRedisClusterOptions = {}): Promise<RedisClusterProcess> {
      const c = await startRedisCluster(o);
      clusters.push(c);
      return c;
    },
    stateDir(): string {
      const d = mkdtempSync(join(tmpdir(), statePrefix));
      dirs.push(d);
      return d;
    },
    async cleanup(): Promise<void> {
      await Promise.all(clusters.map((c) => c.stop()));
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

/** `count` keys spread over every slot (hashes, lists, strings with long TTLs), through a cluster client. */
export async function seedCluster(c: RedisClusterProcess, count: number): Promise<void> {
  const client = new Cluster([{ host: c.masters[0]!.host, port: c.masters[0]!.port }]);
  try {
    for (let i = 0; i < count; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, count - i) }, (_, j) => {
          const n = i + j;
          if (n % 3 === 0) return client.hset(`seed:h:${n}`, 'a', n);
          if (n % 3 === 1) return client.rpush(`seed:l:${n}`, 'x', String(n));
          return client.set(`seed:s:${n}`, `v${n}`, 'EX', 1000 + n);
        }),
      );
    }
  } finally {
    client.disconnect();
  }
}

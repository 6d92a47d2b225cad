import { Redis } from 'ioredis';
import { startRedis } from '../test/support/redis-server.ts';

/** The benchmarks' reference: wall time from REPLICAOF to a fresh replica that serves the whole dataset. */
export async function measureNativeReplication(sourcePort: number, dbsize: number): Promise<number> {
  const replica = await startRedis();
  const r = new Redis(replica.port, '127.0.0.1');
  try {
    const t = performance.now();
    await r.replicaof('127.0.0.1', sourcePort);
    for (;;) {
      const info = await r.info('replication');
      if (info.includes('master_link_status:up') && (await r.dbsize()) === dbsize) break;
      await new Promise((res) => setTimeout(res, 5));
    }
    return (performance.now() - t) / 1000;
  } finally {
    r.disconnect();
    await replica.stop();
  }
}

/** n per second, rounded, with thousands separators. */
export function rate(n: number, seconds: number): string {
  return Math.round(n / seconds).toLocaleString('en-US');
}

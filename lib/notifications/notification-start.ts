import { parseInfo } from '../redis/admin-client.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';

/**
 * The shard checkpoint's start for the notification reader, which reads no replication stream: the
 * source's replication id and offset from INFO, recorded for the task's history only (nothing resumes
 * from them). Never PSYNC: this reader is for sources that refuse it.
 */
export async function notificationStart(
  ep: RedisEndpoint,
): Promise<{ replid: string; offset: number; via: 'info' }> {
  const conn = await RawConnection.open(ep, { clientName: 'redis-dts-capture' });
  try {
    const reply = await conn.call(['INFO', 'replication']);
    const f = parseInfo(Buffer.isBuffer(reply) ? reply.toString() : String(reply));
    const offset = Number(f.master_repl_offset);
    return {
      replid: f.master_replid ?? 'unknown',
      offset: Number.isFinite(offset) ? offset : 0,
      via: 'info',
    };
  } finally {
    await conn.close().catch(() => conn.destroy());
  }
}

import type { Redis } from 'ioredis';
import { classifyAdminError } from '../redis/admin-client.ts';
import { TEMP_KEY_TTL_MS } from './server-facts.ts';

/**
 * Writes `key` with a TTL and removes it again. Throws the classified DtsError of a refused write
 * (NOPERM, READONLY, OOM…); a refused DEL is ignored because the TTL removes the key anyway.
 */
export async function writeAndRemove(client: Redis, key: string): Promise<void> {
  try {
    await client.set(key, 'redis-dts precheck', 'PX', TEMP_KEY_TTL_MS);
  } catch (e) {
    throw classifyAdminError(client, e, 'SET');
  }
  await client.del(key).catch(() => undefined);
}

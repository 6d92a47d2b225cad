import type { Redis } from 'ioredis';
import { classifyAdminError } from '../redis/admin-client.ts';
import { TEMP_KEY_TTL_MS, transactionCause } from './server-facts.ts';

/**
 * Writes `key` with a TTL and removes it again. Throws the classified DtsError of a refused write
 * (NOPERM, READONLY, OOM…). A DEL the ACL refuses is an error too: the sync deletes keys (a key gone
 * from the source, its own markers and heartbeat); any other failure of the DEL is left to the TTL.
 */
export async function writeAndRemove(client: Redis, key: string, inTransaction = false): Promise<void> {
  try {
    if (inTransaction) {
      // As incremental sync applies its batches (with the marker) on a standalone destination.
      const replies = await client.multi().set(key, 'redis-dts precheck', 'PX', TEMP_KEY_TTL_MS).exec();
      const err = replies?.[0]?.[0];
      if (err) throw err;
    } else {
      await client.set(key, 'redis-dts precheck', 'PX', TEMP_KEY_TTL_MS);
    }
  } catch (e) {
    throw classifyAdminError(client, transactionCause(e), inTransaction ? 'MULTI/SET/EXEC' : 'SET');
  }
  try {
    await client.del(key);
  } catch (e) {
    if (e instanceof Error && /^NOPERM/.test(e.message)) throw classifyAdminError(client, e, 'DEL');
  }
}

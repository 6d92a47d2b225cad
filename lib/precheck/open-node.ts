import { performance } from 'node:perf_hooks';
import { classifyAdminError, connectAdmin, parseInfo, serverInfo } from '../redis/admin-client.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { configGetter } from './server-facts.ts';
import type { PrecheckSide } from './types.ts';

/** Logs in and reads INFO; a connection that logged in but may not run INFO is closed before the throw. */
export async function openNode(ep: RedisEndpoint): Promise<PrecheckSide> {
  const client = await connectAdmin(ep);
  try {
    const info = await serverInfo(client);
    const fieldsAt = performance.now();
    let text: string;
    try {
      text = await client.info();
    } catch (e) {
      throw classifyAdminError(client, e, 'INFO');
    }
    const fields = parseInfo(text);
    return { ep, client, info, fields, fieldsAt, config: configGetter(client) };
  } catch (e) {
    client.disconnect();
    throw e;
  }
}

/** Closes the side's connection and those to its cluster's masters. */
export function closeSide(side: PrecheckSide): void {
  side.client.disconnect();
  for (const m of side.masters ?? []) m.client.disconnect();
}

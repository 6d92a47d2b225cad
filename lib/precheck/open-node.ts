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
    // The data-plane connections check the link with PING: a user without it fails here, by name
    // (and before the INFO below, whose counters start the write-rate sample).
    await client.ping().catch((e: unknown) => {
      throw classifyAdminError(client, e, 'PING');
    });
    const fieldsAt = performance.now();
    let text: string;
    try {
      text = await client.info();
    } catch (e) {
      throw classifyAdminError(client, e, 'INFO');
    }
    const fields = parseInfo(text);
    const sentBytes = () => (client.stream as { bytesWritten?: number } | undefined)?.bytesWritten ?? 0;
    return {
      ep,
      client,
      info,
      fields,
      fieldsAt,
      sentBytes,
      fieldsSent: sentBytes(),
      config: configGetter(client),
    };
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

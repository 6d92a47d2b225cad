import { performance } from 'node:perf_hooks';
import { DtsError, isDtsError } from '../errors.ts';
import { classifyAdminError, connectAdmin, parseInfo, serverInfo } from '../redis/admin-client.ts';
import { resolveEndpoint } from '../task/resolve-endpoint.ts';
import type { TaskSpec } from '../task/spec.ts';
import { addressOf, configGetter, formatBytes, plural, productVersion } from './server-facts.ts';
import type { PrecheckItem, PrecheckSide, Role } from './types.ts';

export const CONNECT_TITLES: Record<Role, string> = {
  source: 'Source reachable and authenticated',
  target: 'Destination reachable and authenticated',
};

/**
 * Logs in and reads INFO: the item is Failed with the DtsError's cause and fix when either fails,
 * since every later check needs both. A connection that logged in but may not run INFO is closed.
 */
export async function connectSide(
  spec: TaskSpec,
  role: Role,
  secretValue?: string,
): Promise<{ item: PrecheckItem; side?: PrecheckSide }> {
  const id = `${role}-connect`;
  const title = CONNECT_TITLES[role];
  try {
    const ep = resolveEndpoint(spec[role], role, secretValue);
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
      const side: PrecheckSide = { ep, client, info, fields, fieldsAt, config: configGetter(client) };
      return { item: { id, title, status: 'passed', detail: describeServer(side) }, side };
    } catch (e) {
      client.disconnect();
      throw e;
    }
  } catch (e) {
    const err = isDtsError(e)
      ? e
      : new DtsError('INTERNAL', String((e as Error)?.message ?? e), 'report a bug in redis-dts');
    return { item: { id, title, status: 'failed', detail: err.message, fix: err.fix } };
  }
}

function describeServer(side: PrecheckSide): string {
  const { info, fields } = side;
  const keys = Object.values(info.keyspace).reduce((n, db) => n + db.keys, 0);
  const dbs = Object.keys(info.keyspace).length;
  const contents = keys === 0 ? 'no keys' : `${plural(keys, 'key')} in ${plural(dbs, 'db')}`;
  const mode = info.clusterEnabled ? ', cluster mode' : '';
  const user = side.ep.username ? `, user '${side.ep.username}'` : '';
  return (
    `${addressOf(side.ep)}: ${productVersion(fields)} (${info.role}${mode}${user}), ${contents}, ` +
    `used memory ${formatBytes(info.usedMemory)}`
  );
}

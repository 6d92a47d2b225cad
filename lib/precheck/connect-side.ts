import { DtsError, isDtsError } from '../errors.ts';
import { resolveEndpoint } from '../task/resolve-endpoint.ts';
import type { TaskSpec } from '../task/spec.ts';
import { attachClusterLayout } from './cluster-layout.ts';
import { openNode } from './open-node.ts';
import { addressOf, formatBytes, plural, productVersion } from './server-facts.ts';
import type { PrecheckItem, PrecheckSide, Role } from './types.ts';

export const CONNECT_TITLES: Record<Role, string> = {
  source: 'Source reachable and authenticated',
  target: 'Destination reachable and authenticated',
};

/**
 * Logs in and reads INFO: the item is Failed with the DtsError's cause and fix when either fails,
 * since every later check needs both. A connection that logged in but may not run INFO is closed.
 * On a cluster node it also reads the slot map and connects to every master (see attachClusterLayout).
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
    const side = await openNode(ep);
    // Layout problems are the topology item's to report: the login itself worked.
    if (side.info.clusterEnabled) await attachClusterLayout(side);
    return { item: { id, title, status: 'passed', detail: describeServer(side) }, side };
  } catch (e) {
    const err = isDtsError(e)
      ? e
      : new DtsError('INTERNAL', String((e as Error)?.message ?? e), 'report a bug in redis-dts');
    return { item: { id, title, status: 'failed', detail: err.message, fix: err.fix } };
  }
}

function describeServer(side: PrecheckSide): string {
  const { info, fields } = side;
  // A cluster's keys and memory are spread over its masters: the seed alone would understate both.
  const nodes = side.masters ?? [side];
  const keyspaces = nodes.map((n) => n.info.keyspace);
  const keys = keyspaces.reduce((n, ks) => n + Object.values(ks).reduce((k, db) => k + db.keys, 0), 0);
  const dbs = new Set(keyspaces.flatMap((ks) => Object.keys(ks))).size;
  const used = nodes.reduce((n, node) => n + node.info.usedMemory, 0);
  const over = side.masters ? ` over ${plural(side.masters.length, 'master')}` : '';
  const contents = keys === 0 ? `no keys${over}` : `${plural(keys, 'key')} in ${plural(dbs, 'db')}${over}`;
  const mode = info.clusterEnabled ? ', cluster mode' : '';
  const user = side.ep.username ? `, user '${side.ep.username}'` : '';
  return (
    `${addressOf(side.ep)}: ${productVersion(fields)} (${info.role}${mode}${user}), ${contents}, ` +
    `used memory ${formatBytes(used)}${side.masters ? ' (summed)' : ''}`
  );
}

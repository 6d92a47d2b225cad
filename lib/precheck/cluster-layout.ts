import { DtsError, isDtsError } from '../errors.ts';
import { type ClusterTopology, readClusterTopology } from '../redis/cluster-topology.ts';
import { openNode } from './open-node.ts';
import type { PrecheckSide } from './types.ts';

/**
 * Reads a cluster side's slot map from its seed and connects to every master, since per-node facts
 * (keys, memory, backlog, permissions) differ between masters. Never throws: what went wrong is kept in
 * `layoutError` for the topology item to report.
 */
export async function attachClusterLayout(seed: PrecheckSide): Promise<void> {
  let topology: ClusterTopology;
  try {
    topology = await readClusterTopology(seed.ep);
  } catch (e) {
    seed.layoutError = asDtsError(e);
    return;
  }
  const opened = await Promise.allSettled(topology.masters.map((m) => openNode(m.endpoint)));
  const failed = opened.find((r) => r.status === 'rejected');
  if (failed) {
    for (const r of opened) if (r.status === 'fulfilled') r.value.client.disconnect();
    const err = asDtsError(failed.reason);
    seed.layoutError = new DtsError(
      err.code,
      `a master the cluster announces could not be checked: ${err.message}`,
      `${err.fix}; every master must be reachable at the address CLUSTER SLOTS gives, with the seed's credentials`,
    );
    return;
  }
  seed.topology = topology;
  seed.masters = opened.map((r) => (r as PromiseFulfilledResult<PrecheckSide>).value);
}

function asDtsError(e: unknown): DtsError {
  return isDtsError(e)
    ? e
    : new DtsError('INTERNAL', String((e as Error)?.message ?? e), 'report a bug in redis-dts');
}

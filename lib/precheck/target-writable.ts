import { probeKeysByNode } from './cluster-nodes.ts';
import { addressOf, failedFrom, precheckKey, TEMP_KEY_PREFIX, TEMP_KEY_TTL_MS } from './server-facts.ts';
import { type PrecheckCheck, sideOf } from './types.ts';
import { writeAndRemove } from './write-probe.ts';

export const targetWritable: PrecheckCheck = {
  id: 'target-writable',
  title: 'Destination writable',
  needs: ['target'],
  async run(ctx) {
    const target = sideOf(ctx, 'target');
    // On a cluster every master takes writes (its own memory limit, min-replicas-to-write…), so each is tried.
    const probes = probeKeysByNode(target, precheckKey(TEMP_KEY_PREFIX));
    for (const { node, key } of probes) {
      try {
        // Incremental batches on a standalone destination are MULTI/EXEC; a cluster's are plain pipelines.
        await writeAndRemove(node.client, key, ctx.spec.syncType !== 'full' && !target.topology);
      } catch (e) {
        const on = target.topology ? ` on master ${addressOf(node.ep)}` : '';
        return failedFrom(e, `cannot write a key${on}`);
      }
    }
    const ttl = `TTL ${TEMP_KEY_TTL_MS / 1000} s`;
    if (!target.topology)
      return { status: 'passed', detail: `wrote and removed a temporary key ${probes[0]!.key} (${ttl})` };
    return {
      status: 'passed',
      detail: `wrote and removed a temporary key on each of the ${probes.length} masters, each key hash-tagged into that master's slots (${probes.map((p) => `${addressOf(p.node.ep)}: ${p.key}`).join(', ')}; ${ttl})`,
    };
  },
};

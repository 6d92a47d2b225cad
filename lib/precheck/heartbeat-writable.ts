import { probeKeysByNode } from './cluster-nodes.ts';
import { addressOf, failedFrom, precheckKey } from './server-facts.ts';
import { type PrecheckCheck, sideOf } from './types.ts';
import { writeAndRemove } from './write-probe.ts';

export const heartbeatWritable: PrecheckCheck = {
  id: 'heartbeat-writable',
  title: 'Heartbeat key writable on the source',
  needs: ['source'],
  notApplicable(spec) {
    if (spec.syncType === 'full') return 'syncType full has no incremental phase, so no heartbeat';
    if (!spec.incremental.heartbeat.enabled)
      return 'the heartbeat is off (incremental.heartbeat.enabled: false)';
    return undefined;
  },
  async run(ctx) {
    const source = sideOf(ctx, 'source');
    const prefix = ctx.spec.incremental.heartbeat.prefix;
    // A cluster source has one heartbeat per master (`…:{tag}` in its slots), so each master is tried.
    const probes = probeKeysByNode(source, precheckKey(prefix));
    for (const { node, key } of probes) {
      try {
        await writeAndRemove(node.client, key);
      } catch (e) {
        const on = source.topology ? ` on master ${addressOf(node.ep)}` : '';
        const result = failedFrom(e, `cannot write a heartbeat key (${prefix}…)${on}`);
        return {
          ...result,
          fix: `${result.fix}; or turn the heartbeat off (incremental.heartbeat.enabled: false), and lag is then measured only while the source writes`,
        };
      }
    }
    if (!source.topology) {
      return {
        status: 'passed',
        detail: `wrote and removed ${probes[0]!.key} on the source (the heartbeat keeps the replication offset moving)`,
      };
    }
    return {
      status: 'passed',
      detail: `wrote and removed a heartbeat-like key on each of the ${probes.length} source masters (${probes.map((p) => `${addressOf(p.node.ep)}: ${p.key}`).join(', ')}): each master's heartbeat keeps its own replication offset moving`,
    };
  },
};

import { SLOT_COUNT } from '../redis/cluster-slot.ts';
import { combineNodeResults } from './cluster-nodes.ts';
import { addressOf, formatBytes } from './server-facts.ts';
import { type CheckResult, nodesOf, type PrecheckCheck, type PrecheckSide, sideOf } from './types.ts';

/** Headroom over the source's used memory: encodings, fragmentation and writes during the sync. */
const HEADROOM = 1.1;

export const targetMemory: PrecheckCheck = {
  id: 'target-memory',
  title: 'Destination memory',
  needs: ['source', 'target'],
  async run(ctx) {
    const source = sideOf(ctx, 'source');
    const target = sideOf(ctx, 'target');
    // The whole instance's memory even when only some dbs are selected: per-db memory is not reported,
    // and overestimating costs a warning where underestimating costs an OOM halfway through.
    // A cluster source's data is spread over its masters, so theirs is summed.
    const needed = nodesOf(source).reduce((n, node) => n + node.info.usedMemory, 0);
    const srcUsed = source.topology
      ? `the source's used memory (${formatBytes(needed)}, summed over its ${nodesOf(source).length} masters)`
      : `the source's used memory (${formatBytes(needed)})`;
    const { topology } = target;
    if (!topology) return judgeNode(target, needed, srcUsed, 'the destination');

    // Keys land on a master by slot, so each master must hold its slots' share (even spread assumed:
    // hash tags can skew it, which the headroom only partly covers).
    const masters = nodesOf(target);
    const results = topology.masters.map((m, i) => {
      const slots = m.ranges.reduce((n, [start, end]) => n + end - start + 1, 0);
      const share = Math.ceil((needed * slots) / SLOT_COUNT);
      const what = `its share of ${srcUsed}: ${formatBytes(share)} for ${slots} of ${SLOT_COUNT} slots`;
      return { node: masters[i]!, share, result: judgeNode(masters[i]!, share, what, 'this master') };
    });
    return combineNodeResults(
      results,
      () =>
        `each destination master has at least ${HEADROOM} × its share of ${srcUsed} free, the share ` +
        `split by slot count: ${results.map((r) => `${addressOf(r.node.ep)} ${freeText(r.node)} for ${formatBytes(r.share)}`).join(', ')}`,
    );
  },
};

function freeText(node: PrecheckSide): string {
  const { maxmemory, usedMemory } = node.info;
  const limit = maxmemory > 0 ? maxmemory : Number(node.fields.total_system_memory) || 0;
  return limit === 0 ? 'no memory limit reported' : `${formatBytes(Math.max(0, limit - usedMemory))} free`;
}

/** One server's free memory against what it will receive (`wants`, worded as `what`). */
function judgeNode(node: PrecheckSide, wants: number, what: string, subject: string): CheckResult {
  const { maxmemory, usedMemory } = node.info;
  const raiseTo = formatBytes(Math.ceil(usedMemory + wants * HEADROOM));
  if (maxmemory > 0 && maxmemory < wants) {
    return {
      status: 'failed',
      detail: `destination maxmemory ${formatBytes(maxmemory)} is below ${what}`,
      fix: `raise ${subject === 'the destination' ? "the destination's" : `${addressOf(node.ep)}'s`} maxmemory to at least ${raiseTo} (CONFIG SET maxmemory, or a larger node)`,
    };
  }
  const system = Number(node.fields.total_system_memory) || 0;
  const limit = maxmemory > 0 ? maxmemory : system;
  if (limit === 0) {
    return { status: 'passed', detail: `${subject} reports no memory limit; ${what}` };
  }
  const free = Math.max(0, limit - usedMemory);
  const limitText =
    maxmemory > 0 ? `maxmemory ${formatBytes(maxmemory)}` : `no maxmemory, ${formatBytes(system)} of RAM`;
  const freeText = `${subject} has ${formatBytes(free)} free (${limitText}, ${formatBytes(usedMemory)} used)`;
  if (free < wants * HEADROOM) {
    return {
      status: 'warning',
      detail: `${freeText}, less than ${HEADROOM} × ${what}: it may run out of memory during the sync`,
      fix: `give ${subject === 'the destination' ? 'the destination' : addressOf(node.ep)} at least ${raiseTo} (CONFIG SET maxmemory, or a larger node), or copy fewer dbs or keys`,
    };
  }
  return { status: 'passed', detail: `${freeText}, at least ${HEADROOM} × ${what}` };
}

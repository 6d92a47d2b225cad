import { formatBytes } from './server-facts.ts';
import { type PrecheckCheck, sideOf } from './types.ts';

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
    const needed = source.info.usedMemory;
    const { maxmemory, usedMemory } = target.info;
    const srcUsed = `the source's used memory (${formatBytes(needed)})`;
    if (maxmemory > 0 && maxmemory < needed) {
      return {
        status: 'failed',
        detail: `destination maxmemory ${formatBytes(maxmemory)} is below ${srcUsed}`,
        fix: `raise the destination's maxmemory to at least ${formatBytes(Math.ceil(usedMemory + needed * HEADROOM))} (CONFIG SET maxmemory, or a larger node)`,
      };
    }
    const system = Number(target.fields.total_system_memory) || 0;
    const limit = maxmemory > 0 ? maxmemory : system;
    if (limit === 0) {
      return { status: 'passed', detail: `the destination reports no memory limit; ${srcUsed}` };
    }
    const free = Math.max(0, limit - usedMemory);
    const limitText =
      maxmemory > 0 ? `maxmemory ${formatBytes(maxmemory)}` : `no maxmemory, ${formatBytes(system)} of RAM`;
    const freeText = `the destination has ${formatBytes(free)} free (${limitText}, ${formatBytes(usedMemory)} used)`;
    if (free < needed * HEADROOM) {
      return {
        status: 'warning',
        detail: `${freeText}, less than ${HEADROOM} × ${srcUsed}: it may run out of memory during the sync`,
        fix: `give the destination at least ${formatBytes(Math.ceil(usedMemory + needed * HEADROOM))} (CONFIG SET maxmemory, or a larger node), or copy fewer dbs or keys`,
      };
    }
    return { status: 'passed', detail: `${freeText}, at least ${HEADROOM} × ${srcUsed}` };
  },
};

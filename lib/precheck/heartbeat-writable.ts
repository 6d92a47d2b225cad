import { failedFrom, precheckKey } from './server-facts.ts';
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
    const key = precheckKey(prefix);
    try {
      await writeAndRemove(source.client, key);
    } catch (e) {
      const result = failedFrom(e, `cannot write a heartbeat key (${prefix}…)`);
      return {
        ...result,
        fix: `${result.fix}; or turn the heartbeat off (incremental.heartbeat.enabled: false), and lag is then measured only while the source writes`,
      };
    }
    return {
      status: 'passed',
      detail: `wrote and removed ${key} on the source (the heartbeat keeps the replication offset moving)`,
    };
  },
};

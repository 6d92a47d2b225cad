import { type PrecheckCheck, sideOf } from './types.ts';

export const clusterTarget: PrecheckCheck = {
  id: 'target-cluster',
  title: 'Destination topology',
  needs: ['target'],
  async run(ctx) {
    const target = sideOf(ctx, 'target');
    if (!target.info.clusterEnabled) {
      return {
        status: 'passed',
        detail: 'standalone destination: every command is applied as the source ran it',
      };
    }
    // Refused here rather than only when the copy starts, so the report says it before anything runs.
    return {
      status: 'failed',
      detail:
        'the destination is a Redis Cluster node: cluster destinations (slot routing, per-node markers, ' +
        'multi-key commands split or re-copied per slot) are not built yet',
      fix: 'sync into a standalone Redis for now',
    };
  },
};

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
    return {
      status: 'passed',
      detail:
        'the destination is a cluster (db 0 only): each key is written to the node that owns its slot; a ' +
        'multi-key command whose keys span slots (MSET, DEL of several keys, RENAME, SUNIONSTORE…) is split ' +
        'per slot where that keeps its meaning, otherwise its keys are re-copied from the source at a stamped ' +
        'offset, so the result stays exact',
    };
  },
};

import { failedFrom, precheckKey, TEMP_KEY_PREFIX, TEMP_KEY_TTL_MS } from './server-facts.ts';
import { type PrecheckCheck, sideOf } from './types.ts';
import { writeAndRemove } from './write-probe.ts';

export const targetWritable: PrecheckCheck = {
  id: 'target-writable',
  title: 'Destination writable',
  needs: ['target'],
  async run(ctx) {
    const target = sideOf(ctx, 'target');
    const key = precheckKey(TEMP_KEY_PREFIX);
    try {
      await writeAndRemove(target.client, key);
    } catch (e) {
      return failedFrom(e, 'cannot write a key');
    }
    return {
      status: 'passed',
      detail: `wrote and removed a temporary key ${key} (TTL ${TEMP_KEY_TTL_MS / 1000} s)`,
    };
  },
};

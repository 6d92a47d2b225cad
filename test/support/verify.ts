import { makeKeyFilter } from '../../lib/commands/key-filter.ts';
import { parseRedisUrl } from '../../lib/redis/url.ts';
import { verifyData } from '../../lib/verify/verify-data.ts';
import type { VerifyOptions, VerifyReport } from '../../lib/verify/verify-types.ts';

/**
 * verifyData between two URLs with the tests' defaults: db 0 against db 0, full mode, one round, every
 * key, no delay, 50 examples. Any option can be given instead.
 */
export function verifyUrls(
  source: string,
  target: string,
  o: Partial<VerifyOptions> = {},
): Promise<VerifyReport> {
  return verifyData({
    source: parseRedisUrl(source, 'source'),
    target: parseRedisUrl(target, 'target'),
    units: [{ unitId: 'db0', sourceDb: 0, targetDb: 0 }],
    keep: makeKeyFilter(),
    mode: 'full',
    rounds: 1,
    sampleRate: 1,
    ttlToleranceMs: 100,
    roundDelayMs: 0,
    maxExamples: 50,
    ...o,
  });
}

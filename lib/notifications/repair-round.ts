import { setTimeout as sleep } from 'node:timers/promises';
import type { KeyPredicate } from '../commands/key-filter.ts';
import type { FullSyncUnit } from '../fullsync/copy-unit.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { verifyData } from '../verify/verify-data.ts';
import type { KeyspaceWatch } from './keyspace-watch.ts';

export interface RepairRoundOptions {
  source: RedisEndpoint;
  target: RedisEndpoint;
  units: readonly FullSyncUnit[];
  keep: KeyPredicate;
  ttlToleranceMs: number;
  watch: KeyspaceWatch;
  signal?: AbortSignal;
}

export interface RepairRoundResult {
  keysCompared: number;
  /** Keys that differed and were marked to be copied again (extra destination keys included). */
  keysDiffering: number;
  seconds: number;
  /** The round was cut short (a stop): it proves nothing. */
  stopped: boolean;
}

/**
 * A repair round after a gap in keyspace events (and the last step before a cut-over): one verification
 * pass over every selected db (lib/verify: DUMP payloads compared byte for byte, expiries, extra keys on
 * the destination), each differing key marked dirty so the drain copies it again (or deletes it) while
 * events keep flowing. The scan waits while the dirty set is full, so a flood of differences does not
 * drop marks.
 */
export async function repairRound(o: RepairRoundOptions): Promise<RepairRoundResult> {
  const started = performance.now();
  const report = await verifyData({
    source: o.source,
    target: o.target,
    units: o.units,
    keep: o.keep,
    mode: 'full',
    rounds: 1,
    sampleRate: 1,
    ttlToleranceMs: o.ttlToleranceMs,
    maxExamples: 0,
    ...(o.signal ? { signal: o.signal } : {}),
    onDifference: async (unit, key) => {
      const shard = o.watch.shardOfKey(key);
      while (shard.dirty.full && !o.signal?.aborted) await sleep(10);
      shard.dirty.mark(unit.sourceDb, key);
    },
  });
  return {
    keysCompared: report.keysCompared,
    keysDiffering: report.keysDiffering,
    seconds: (performance.now() - started) / 1000,
    stopped: report.stopped === true,
  };
}

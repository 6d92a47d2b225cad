import { describe, expect, it } from 'vitest';
import type { IncrementalProgress } from '../../lib/incremental/incremental-types.ts';
import { combineOutcomes, combineProgress } from '../../lib/incremental/shard-progress.ts';

function progress(p: Partial<IncrementalProgress>): IncrementalProgress {
  return {
    phase: 'incremental',
    opsPerSecond: 0,
    lagMs: undefined,
    p50LagMs: undefined,
    p99LagMs: undefined,
    bytesBehind: 0,
    appliedOffset: 100,
    sourceOffset: 100,
    commandsApplied: 0,
    commandsSkipped: 0,
    keysRecopied: 0,
    dbsResynced: 0,
    reconnects: 0,
    ...p,
  };
}

describe('combineProgress', () => {
  it('adds counts and rates, and reports the furthest-behind shard', () => {
    const all = combineProgress([
      progress({ phase: 'incremental', opsPerSecond: 10, lagMs: 3, bytesBehind: 5, commandsApplied: 7 }),
      progress({ phase: 're-copy', opsPerSecond: 5, lagMs: 40, bytesBehind: 1, commandsApplied: 2 }),
    ]);
    expect(all).toMatchObject({
      phase: 're-copy',
      opsPerSecond: 15,
      lagMs: 40,
      bytesBehind: 6,
      commandsApplied: 9,
    });
    // Offsets of different streams do not add up.
    expect(all.appliedOffset).toBeUndefined();
  });

  it('leaves bytes behind unknown while any shard does not know it, and one shard unchanged', () => {
    expect(combineProgress([progress({}), progress({ bytesBehind: undefined })]).bytesBehind).toBeUndefined();
    const one = progress({ appliedOffset: 42 });
    expect(combineProgress([one])).toBe(one);
  });

  it('ends as stopped if any shard stopped, else deadline, else caught up', () => {
    const o = (ended: 'stopped' | 'caught-up' | 'deadline') => ({
      ended,
      position: { replid: 'r', offset: 1 },
      progress: progress({}),
    });
    expect(combineOutcomes([o('caught-up'), o('stopped')]).ended).toBe('stopped');
    expect(combineOutcomes([o('caught-up'), o('deadline')]).ended).toBe('deadline');
    expect(combineOutcomes([o('caught-up'), o('caught-up')]).ended).toBe('caught-up');
  });
});

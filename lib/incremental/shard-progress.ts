import type { IncrementalOutcome, IncrementalPhase, IncrementalProgress } from './incremental-types.ts';

const PHASE_ORDER: IncrementalPhase[] = ['catch-up', 're-copy', 'incremental'];

/**
 * Several shards' incremental figures as one: counts and rates add up, lag and phase are the furthest
 * behind shard's (a task is only as current as its slowest stream). One shard passes through unchanged.
 */
export function combineProgress(shards: readonly IncrementalProgress[]): IncrementalProgress {
  if (shards.length === 1) return shards[0]!;
  const sum = (f: (p: IncrementalProgress) => number | undefined) =>
    shards.some((p) => f(p) === undefined) ? undefined : shards.reduce((n, p) => n + f(p)!, 0);
  const max = (f: (p: IncrementalProgress) => number | undefined) => {
    const known = shards.map(f).filter((v) => v !== undefined);
    return known.length > 0 ? Math.max(...known) : undefined;
  };
  return {
    phase: PHASE_ORDER[Math.min(...shards.map((p) => PHASE_ORDER.indexOf(p.phase)))]!,
    opsPerSecond: sum((p) => p.opsPerSecond) ?? 0,
    lagMs: max((p) => p.lagMs),
    p50LagMs: max((p) => p.p50LagMs),
    p99LagMs: max((p) => p.p99LagMs),
    bytesBehind: sum((p) => p.bytesBehind),
    // Offsets of different shards' streams do not add up: there is no task-wide offset.
    appliedOffset: undefined,
    sourceOffset: undefined,
    commandsApplied: sum((p) => p.commandsApplied) ?? 0,
    commandsSkipped: sum((p) => p.commandsSkipped) ?? 0,
    keysRecopied: sum((p) => p.keysRecopied) ?? 0,
    dbsResynced: sum((p) => p.dbsResynced) ?? 0,
    reconnects: sum((p) => p.reconnects) ?? 0,
  };
}

/** The shards' outcomes as one: 'stopped' if any stopped, else 'deadline' if any ran out, else caught up. */
export function combineOutcomes(outcomes: readonly IncrementalOutcome[]): IncrementalOutcome {
  if (outcomes.length === 1) return outcomes[0]!;
  const ended = outcomes.some((o) => o.ended === 'stopped')
    ? 'stopped'
    : outcomes.some((o) => o.ended === 'deadline')
      ? 'deadline'
      : 'caught-up';
  return {
    ended,
    position: outcomes[0]!.position,
    progress: combineProgress(outcomes.map((o) => o.progress)),
  };
}

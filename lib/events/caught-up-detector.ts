/** What the detector reads of the incremental progress. */
export interface LagSample {
  phase: string;
  lagMs: number | undefined;
  bytesBehind: number | undefined;
}

/**
 * The Caught Up event's rule: lag at or under `lagMs` without a break for `forMs`, while applying
 * changes (not during the catch-up). Fires once, and again only after lag went over the threshold.
 * Without a heartbeat there is no lag in ms, and zero bytes behind counts as under it. Time is given,
 * not read, so the rule is tested without clocks.
 */
export class CaughtUpDetector {
  private readonly lagMs: number;
  private readonly forMs: number;
  private under: number | undefined;
  private fired = false;

  constructor(o: { lagMs: number; forMs: number }) {
    this.lagMs = o.lagMs;
    this.forMs = o.forMs;
  }

  /** True exactly when the event is due. */
  observe(p: LagSample, now: number): boolean {
    const ok =
      p.phase === 'incremental' && (p.lagMs !== undefined ? p.lagMs <= this.lagMs : p.bytesBehind === 0);
    if (!ok) {
      this.under = undefined;
      this.fired = false;
      return false;
    }
    this.under ??= now;
    if (this.fired || now - this.under < this.forMs) return false;
    this.fired = true;
    return true;
  }
}

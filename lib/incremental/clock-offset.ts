/** The source's clock minus ours, and how far off that can be (half the round trip it was read in). */
export interface ClockEstimate {
  offsetMs: number;
  errorMs: number;
}

/** Samples kept: one per heartbeat, so about the last half minute. */
const SAMPLES = 30;

/**
 * The source clock's offset to ours from TIME round trips, NTP-style: of the recent samples the one
 * read in the shortest round trip wins, since the source read its clock somewhere inside that trip. A
 * loaded machine makes some trips long (measured: 50 ms off with the latest sample alone, load 16).
 */
export class ClockOffset {
  private readonly samples: ClockEstimate[] = [];

  /** `sourceUs`: TIME in µs; `before`/`after`: Date.now() around the call. */
  add(sourceUs: number, before: number, after: number): void {
    this.samples.push({ offsetMs: sourceUs / 1000 - (before + after) / 2, errorMs: (after - before) / 2 });
    if (this.samples.length > SAMPLES) this.samples.shift();
  }

  get estimate(): ClockEstimate | undefined {
    let best: ClockEstimate | undefined;
    for (const s of this.samples) if (!best || s.errorMs < best.errorMs) best = s;
    return best;
  }
}

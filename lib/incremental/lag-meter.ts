export interface LagMeterOptions {
  /** Milliseconds clock (default Date.now); injectable for tests. */
  now?: () => number;
  /** Window of the lag percentiles (default 60 s). */
  lagWindowMs?: number;
  /** Window of opsPerSecond (default 10 s). */
  opsWindowMs?: number;
}

export interface LagSnapshot {
  opsPerSecond: number;
  lagMs: number | undefined;
  p50LagMs: number | undefined;
  p99LagMs: number | undefined;
  bytesBehind: number | undefined;
  appliedOffset: number | undefined;
}

/**
 * Incremental-sync lag, from three observations: a heartbeat applied (lag in ms = apply time − the
 * source time written into the heartbeat), a batch applied (offset and command count), and the source's
 * master_repl_offset (bytes behind = source offset − applied offset). Pure: no I/O, no timers.
 *
 * The two clocks of a heartbeat lag differ (source TIME vs. this machine's clock), so skew shows up in
 * lagMs; a negative difference can only be skew and is recorded as 0.
 */
export class LagMeter {
  private readonly now: () => number;
  private readonly lagWindowMs: number;
  private readonly opsWindowMs: number;
  private readonly createdAt: number;
  private readonly lagSamples: { at: number; lag: number }[] = [];
  private opsSamples: { at: number; n: number }[] = [];
  /** First live entry of opsSamples: batches can come thousands a second, so no splice per batch. */
  private opsHead = 0;
  private opsInWindow = 0;
  private latestLag: number | undefined;
  private applied: number | undefined;
  private sourceOffset: number | undefined;

  constructor(options: LagMeterOptions = {}) {
    this.now = options.now ?? Date.now;
    this.lagWindowMs = options.lagWindowMs ?? 60_000;
    this.opsWindowMs = options.opsWindowMs ?? 10_000;
    this.createdAt = this.now();
  }

  /** A heartbeat carrying source time `sourceMs` was applied at `appliedAtMs` (default: now). */
  observeHeartbeat(sourceMs: number, appliedAtMs: number = this.now()): void {
    const lag = Math.max(0, appliedAtMs - sourceMs);
    this.latestLag = lag;
    this.lagSamples.push({ at: appliedAtMs, lag });
    this.prune();
  }

  /** A batch of `commands` commands was applied, ending at stream offset `offset`. */
  observeApplied(offset: number, commands: number): void {
    if (this.applied === undefined || offset > this.applied) this.applied = offset;
    if (commands > 0) {
      this.opsSamples.push({ at: this.now(), n: commands });
      this.opsInWindow += commands;
    }
    this.prune();
  }

  /** The source's INFO replication master_repl_offset. */
  observeSourceOffset(masterReplOffset: number): void {
    if (this.sourceOffset === undefined || masterReplOffset > this.sourceOffset) {
      this.sourceOffset = masterReplOffset;
    }
  }

  /** Lag of the latest heartbeat applied; undefined before the first. */
  get lagMs(): number | undefined {
    return this.latestLag;
  }

  get p50LagMs(): number | undefined {
    return this.percentile(50);
  }

  get p99LagMs(): number | undefined {
    return this.percentile(99);
  }

  /**
   * Source offset − applied offset; undefined until both are known. The source offset is sampled now and
   * then, so the applied offset may pass it: that reads as 0, not negative.
   */
  get bytesBehind(): number | undefined {
    if (this.sourceOffset === undefined || this.applied === undefined) return undefined;
    return Math.max(0, this.sourceOffset - this.applied);
  }

  get appliedOffset(): number | undefined {
    return this.applied;
  }

  /**
   * Commands applied per second over the window. Until a whole window has passed, divides by the time
   * since the meter started, but by at least a second, so one early batch does not read as a huge rate.
   */
  get opsPerSecond(): number {
    this.prune();
    const span = Math.min(this.opsWindowMs, Math.max(1000, this.now() - this.createdAt));
    return (this.opsInWindow * 1000) / span;
  }

  snapshot(): LagSnapshot {
    return {
      opsPerSecond: this.opsPerSecond,
      lagMs: this.lagMs,
      p50LagMs: this.p50LagMs,
      p99LagMs: this.p99LagMs,
      bytesBehind: this.bytesBehind,
      appliedOffset: this.applied,
    };
  }

  /** Nearest-rank percentile of the lags applied within the window. */
  private percentile(p: number): number | undefined {
    this.prune();
    if (this.lagSamples.length === 0) return undefined;
    const sorted = this.lagSamples.map((s) => s.lag).sort((a, b) => a - b);
    const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
    return sorted[rank - 1];
  }

  private prune(): void {
    const now = this.now();
    let i = 0;
    while (i < this.lagSamples.length && this.lagSamples[i]!.at <= now - this.lagWindowMs) i++;
    if (i > 0) this.lagSamples.splice(0, i);
    while (
      this.opsHead < this.opsSamples.length &&
      this.opsSamples[this.opsHead]!.at <= now - this.opsWindowMs
    ) {
      this.opsInWindow -= this.opsSamples[this.opsHead]!.n;
      this.opsHead++;
    }
    if (this.opsHead > 1024 && this.opsHead * 2 > this.opsSamples.length) {
      this.opsSamples = this.opsSamples.slice(this.opsHead);
      this.opsHead = 0;
    }
  }
}

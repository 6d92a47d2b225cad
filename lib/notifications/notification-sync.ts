import { setTimeout as sleep } from 'node:timers/promises';
import type { IncrementalOutcome, IncrementalProgress } from '../incremental/incremental-types.ts';
import type { KeyRecopier } from '../incremental/key-recopier.ts';
import type { RateLimiter } from '../util/rate-limiter.ts';
import type { DirtyKey } from './dirty-keys.ts';
import type { EventGap, KeyspaceWatch, ShardWatch } from './keyspace-watch.ts';
import type { RecopyWriter } from './recopy-writer.ts';
import type { RepairRoundResult } from './repair-round.ts';

/** The incremental figures, plus what only this reader has. */
export interface NotificationProgress extends IncrementalProgress {
  reader: 'notifications';
  eventsReceived: number;
  dirtyKeys: number;
  gaps: number;
  recentGaps: readonly EventGap[];
  repairRounds: number;
  repairing: boolean;
  lastRepair?: RepairRoundResult & { at: string };
}

export interface NotificationSyncOptions {
  watch: KeyspaceWatch;
  /** The re-copy reader of each shard (KeyRecopier without skip entries), by shardId. */
  recopierOf: (shard: ShardWatch) => KeyRecopier;
  writer: RecopyWriter;
  /** One compare-and-copy pass over the selected dbs (repairRound). */
  repair: (signal: AbortSignal) => Promise<RepairRoundResult>;
  until: 'stopped' | 'caught-up';
  /** 'caught-up': no event for this long before the final repair round (default 1000). */
  quietMs?: number;
  deadline?: number;
  shouldStop: () => boolean;
  /** A cut-over was accepted: end as 'caught-up' does (the final repair round first), whatever `until`. */
  cutOverAccepted?: () => boolean;
  limiter?: RateLimiter;
  onProgress?: (p: NotificationProgress) => void;
  log: (m: string) => void;
}

/** Keys per re-copy read: larger while a backlog waits (fewer round trips), small when keeping up (less lag). */
const MIN_BATCH_KEYS = 500;
const MAX_BATCH_KEYS = 2000;
const BATCHES_IN_FLIGHT = 3;
const IDLE_MS = 2;
const STOP_DRAIN_MS = 10_000;
const PROGRESS_MS = 1000;
/** Lag samples kept for p50/p99: the last this many keys copied. */
const LAG_SAMPLES = 20_000;

/**
 * The notification reader's loop: drains the watch's dirty keys, each batch read at the source's
 * current state in one stamped transaction (KeyRecopier: DUMP + PEXPIRETIME, the big-key path beyond
 * proto-max-bulk-len) and written as RESTORE … REPLACE ABSTTL or DEL. Reads run one batch ahead of the
 * write in flight; writes go one at a time, so a key's copies land in read order. Gaps reported by the
 * watch start a repair round beside the drain. With until 'caught-up', once no event came for quietMs
 * and nothing waits, a final repair round runs, again until one finds nothing differing while the source
 * stayed quiet: only then is the destination known equal, and the run ends.
 */
export class NotificationSync {
  private readonly o: NotificationSyncOptions;
  private keysRecopied = 0;
  private repairRounds = 0;
  private repairing: Promise<RepairRoundResult> | undefined;
  private repairAbort = new AbortController();
  private repairDue = false;
  private repairFailure: unknown;
  private lastRepair: NotificationProgress['lastRepair'];
  private finalRound: { startedAt: number } | undefined;
  private writing: Promise<void> = Promise.resolve();
  private inFlight: Promise<void>[] = [];
  private lags: number[] = [];
  private lastProgressAt = 0;
  private recopiedAtProgress = 0;

  constructor(o: NotificationSyncOptions) {
    this.o = o;
  }

  async run(): Promise<IncrementalOutcome> {
    const { watch } = this.o;
    let ended: IncrementalOutcome['ended'] | undefined;
    try {
      while (!ended) {
        if (this.o.shouldStop()) ended = 'stopped';
        else if (this.o.deadline !== undefined && Date.now() >= this.o.deadline) ended = 'deadline';
        if (ended === 'stopped') await this.drainMarked();
        if (ended) break;
        if (this.repairFailure !== undefined) throw this.repairFailure;
        const reasons = watch.takeRepairReasons();
        if (reasons.length > 0) {
          this.repairDue = true;
          this.finalRound = undefined;
        }
        if (this.repairDue && !this.repairing) this.startRepair(reasons);
        const drained = await this.drainOnce();
        this.report();
        if (drained) continue;
        const endWhenCaughtUp = this.o.until === 'caught-up' || this.o.cutOverAccepted?.() === true;
        if (endWhenCaughtUp && (await this.caughtUp())) ended = 'caught-up';
        else await sleep(IDLE_MS);
      }
      await this.writing;
    } finally {
      this.repairAbort.abort();
      await this.repairing?.catch(() => undefined);
    }
    this.report(true);
    return {
      ended,
      position: { replid: 'keyspace-notifications', offset: 0 },
      progress: this.progress(),
    };
  }

  /** A stop copies what was already marked (for at most STOP_DRAIN_MS), as the PSYNC reader applies what it read. */
  private async drainMarked(): Promise<void> {
    const until = Date.now() + STOP_DRAIN_MS;
    while (Date.now() < until && (await this.drainOnce()));
  }

  /** One batch from each shard that has dirty keys; false when none had any. */
  private async drainOnce(): Promise<boolean> {
    let any = false;
    for (const shard of this.o.watch.shards) {
      const batch = shard.dirty.take(
        Math.min(MAX_BATCH_KEYS, Math.max(MIN_BATCH_KEYS, Math.floor(shard.dirty.size / 4))),
      );
      if (!batch) continue;
      any = true;
      const keys = batch.keys.filter((k) => this.o.watch.isSelected(k.db));
      if (keys.length === 0) continue;
      await this.copy(shard, batch.db, keys);
    }
    return any;
  }

  /**
   * Reads a batch and chains its write after the previous one. Reads are pipelined on the shard's
   * re-copy connection (they complete in the order sent), so up to BATCHES_IN_FLIGHT batches overlap
   * while each write still lands after the one before it: a key in two batches ends at the later read.
   */
  private async copy(shard: ShardWatch, db: number, keys: DirtyKey[]): Promise<void> {
    const limiter = this.o.limiter;
    await limiter?.acquire(keys.length, 0);
    const reading = this.o.recopierOf(shard).read(
      db,
      keys.map((k) => k.key),
    );
    const previous = this.writing;
    const written = (async () => {
      const recopy = await reading;
      await limiter?.acquire(
        0,
        recopy.commands.reduce((n, c) => n + (c.argv[3]?.length ?? 0), 0),
      );
      await previous;
      await this.o.writer.write(recopy.commands);
      const now = Date.now();
      this.keysRecopied += keys.length;
      for (const k of keys) this.lags.push(now - k.markedAt);
      if (this.lags.length > LAG_SAMPLES) this.lags.splice(0, this.lags.length - LAG_SAMPLES);
    })();
    // Awaited below or by the next batch; marked handled now so a failure waits for them to raise it.
    written.catch(() => undefined);
    this.writing = written;
    this.inFlight.push(written);
    if (this.inFlight.length >= BATCHES_IN_FLIGHT) await this.inFlight.shift();
  }

  private startRepair(reasons: string[]): void {
    this.repairDue = false;
    this.repairRounds++;
    const round = this.repairRounds;
    this.o.log(
      `repair round ${round}: comparing every selected key with the destination and copying what differs` +
        (reasons.length > 0 ? ` (${reasons.join('; ')})` : ''),
    );
    this.repairAbort = new AbortController();
    const running = this.o.repair(this.repairAbort.signal);
    this.repairing = running;
    running.then(
      (r) => {
        this.repairing = undefined;
        this.lastRepair = { ...r, at: new Date().toISOString() };
        this.o.log(
          `repair round ${round}: ${r.keysCompared} keys compared in ${r.seconds.toFixed(1)} s, ` +
            `${r.keysDiffering} differed and are copied again`,
        );
      },
      (e: unknown) => {
        this.repairing = undefined;
        // Raised by the loop: a repair that cannot run leaves the destination unproven.
        this.repairFailure = e;
      },
    );
  }

  /**
   * Nothing waits to be copied, no repair is due or running, and no event came for quietMs: what a
   * cut-over waits for before it is accepted (the final repair round then proves the destination equal).
   */
  isQuiet(quietMs: number): boolean {
    const { watch } = this.o;
    return (
      watch.dirtyKeys === 0 &&
      !this.repairDue &&
      this.repairing === undefined &&
      Date.now() - watch.lastEventAt >= quietMs
    );
  }

  /**
   * until 'caught-up': true once a repair round that started while nothing waited found nothing
   * differing, and no event came since it started.
   */
  private async caughtUp(): Promise<boolean> {
    const { watch } = this.o;
    const quietMs = this.o.quietMs ?? 1000;
    if (watch.dirtyKeys > 0 || this.repairDue) return false;
    if (this.repairing) {
      // Wait a little for it; a failed round is raised by the loop, never retried silently.
      await Promise.race([this.repairing, sleep(IDLE_MS)]);
      return false;
    }
    if (Date.now() - watch.lastEventAt < quietMs) return false;
    await this.writing;
    const final = this.finalRound;
    if (
      final &&
      this.lastRepair &&
      !this.lastRepair.stopped &&
      this.lastRepair.keysDiffering === 0 &&
      watch.lastEventAt < final.startedAt &&
      watch.dirtyKeys === 0
    ) {
      return true;
    }
    this.finalRound = { startedAt: Date.now() };
    this.startRepair(['the source is quiet: the round before the cut-over']);
    return false;
  }

  private progress(): NotificationProgress {
    const { watch } = this.o;
    const now = Date.now();
    const sorted = [...this.lags].sort((a, b) => a - b);
    const pct = (p: number) => (sorted.length > 0 ? sorted[Math.floor((sorted.length - 1) * p)] : undefined);
    const oldest = Math.min(...watch.shards.map((s) => s.dirty.oldestMarkedAt ?? now));
    const seconds = Math.max(0.001, (now - (this.lastProgressAt || now - 1000)) / 1000);
    return {
      reader: 'notifications',
      phase: 'incremental',
      opsPerSecond: (this.keysRecopied - this.recopiedAtProgress) / seconds,
      lagMs: now - oldest,
      p50LagMs: pct(0.5),
      p99LagMs: pct(0.99),
      bytesBehind: undefined,
      appliedOffset: undefined,
      sourceOffset: undefined,
      commandsApplied: 0,
      commandsSkipped: 0,
      keysRecopied: this.keysRecopied,
      dbsResynced: 0,
      reconnects: watch.reconnects,
      eventsReceived: watch.eventsReceived,
      dirtyKeys: watch.dirtyKeys,
      gaps: watch.gaps.count,
      recentGaps: watch.gaps.recent,
      repairRounds: this.repairRounds,
      repairing: this.repairing !== undefined,
      ...(this.lastRepair ? { lastRepair: this.lastRepair } : {}),
    };
  }

  private report(force = false): void {
    const now = Date.now();
    if (!force && now - this.lastProgressAt < PROGRESS_MS) return;
    const p = this.progress();
    this.lastProgressAt = now;
    this.recopiedAtProgress = this.keysRecopied;
    this.lags = [];
    this.o.onProgress?.(p);
  }
}

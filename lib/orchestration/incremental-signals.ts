import type { IncrementalSync } from '../incremental/incremental-sync.ts';
import type { IncrementalProgress } from '../incremental/incremental-types.ts';
import type { TaskStore } from '../state/task-store.ts';
import type { TaskSpec } from '../task/spec.ts';
import { CaughtUpSignal } from './caught-up-signal.ts';
import { CUT_OVER_QUIET_MS, CutOverWatch } from './cut-over-watch.ts';

/**
 * What an incremental run tells the operator beside the data: the Caught Up event (from the combined
 * progress of every shard) and the cut-over (every shard's sync drained at once). One per run of
 * replicateStep.
 */
export class IncrementalSignals {
  private readonly syncs = new Map<string, IncrementalSync>();
  private readonly caughtUp: CaughtUpSignal;
  private readonly cutOver: CutOverWatch;
  private readonly o: {
    store: TaskStore;
    taskId: string;
    spec: TaskSpec;
    shards: number;
    log: (m: string) => void;
  };

  constructor(o: IncrementalSignals['o']) {
    this.o = o;
    this.caughtUp = new CaughtUpSignal(o.spec, o.taskId);
    this.cutOver = new CutOverWatch({
      store: o.store,
      taskId: o.taskId,
      spec: o.spec,
      log: o.log,
      drained: () => this.drained(),
    });
  }

  /** The sync a shard runs now (a new one after the destination's slots moved). */
  register(shardId: string, sync: IncrementalSync): void {
    this.syncs.set(shardId, sync);
  }

  /** Shards ask this between batches: a cut-over was accepted, stop at the source's current offset. */
  get cutOverAccepted(): boolean {
    return this.cutOver.accepted;
  }

  onProgress(p: IncrementalProgress): void {
    this.caughtUp.onProgress(p);
  }

  close(): void {
    this.cutOver.close();
  }

  private drained(): boolean {
    if (this.syncs.size < this.o.shards) return false;
    for (const s of this.syncs.values()) if (!s.isDrained(CUT_OVER_QUIET_MS)) return false;
    return true;
  }
}

import { taskEvents } from '../events/task-events.ts';
import type { CutOverRequest, TaskStore, Versioned } from '../state/task-store.ts';

const POLL_MS = 500;
/** The quiet a cut-over waits for: the same second as `until: caught-up`. */
export const CUT_OVER_QUIET_MS = 1000;

/**
 * Beside a running incremental sync: reads the task's cut-over request (off the data path, like the
 * stop flag) and decides it. Accepted as soon as every shard is drained (all applied, the source quiet,
 * see IncrementalSync.isDrained): the syncs then stop, and Verify and Cleanup end the task as
 * succeeded. Refused when the quiet timeout passes with the source still written: the request is
 * marked refused with the reason, Cut Over Refused is sent, and replication goes on, so a refused
 * cut-over costs the migration nothing. A poll that fails is tried again at the next tick.
 */
export class CutOverWatch {
  private readonly timer: NodeJS.Timeout;
  private request: Versioned<CutOverRequest> | undefined;
  private busy = false;
  private done = false;
  private readonly o: {
    store: TaskStore;
    taskId: string;
    /** The task's spec: where the events go. */
    spec: unknown;
    drained: () => boolean;
    /** How the source's writes showed, for the refusal: '(changes kept arriving on …)'. */
    writesSeenOn?: string;
    log: (m: string) => void;
    pollMs?: number;
  };
  accepted = false;

  constructor(o: CutOverWatch['o']) {
    this.o = o;
    this.timer = setInterval(() => {
      if (this.busy || this.done) return;
      this.busy = true;
      this.tick()
        .catch(() => {
          // A lost conditional write (the request was asked again meanwhile) or a failed read: read it afresh.
          if (!this.accepted) this.request = undefined;
        })
        .finally(() => {
          this.busy = false;
        });
    }, o.pollMs ?? POLL_MS);
    this.timer.unref();
  }

  close(): void {
    this.done = true;
    clearInterval(this.timer);
  }

  private async tick(): Promise<void> {
    const { store, taskId } = this.o;
    if (!this.request) {
      const r = await store.getCutOver(taskId);
      if (r?.value.state === 'accepted') {
        // Accepted by an earlier run that did not get to stop (a Lambda window's end): stop now.
        this.accept(r);
        return;
      }
      if (r?.value.state !== 'requested') return;
      this.request = r;
      this.o.log(
        `cut-over requested: waiting up to ${r.value.quietTimeoutMs / 1000} s for the source to go quiet`,
      );
    }
    const r = this.request;
    const now = new Date().toISOString();
    if (this.o.drained()) {
      await store.putCutOver(taskId, { ...r.value, state: 'accepted', updatedAt: now }, r.version);
      this.accept(r);
      this.o.log(
        'cut-over: every change is applied and the source is quiet; ending the sync for the final verification',
      );
      return;
    }
    if (Date.now() < Date.parse(r.value.requestedAt) + r.value.quietTimeoutMs) return;
    const reason =
      `the source was still being written ${r.value.quietTimeoutMs / 1000} s after the cut-over was requested ` +
      `(changes kept arriving on ${this.o.writesSeenOn ?? 'the replication stream'}, so the destination was not final)`;
    const fix =
      "stop the application's writes to the source, then run redis-dts cutover again (--quiet-timeout waits longer)";
    this.request = undefined;
    await store.putCutOver(taskId, { ...r.value, state: 'refused', reason, fix, updatedAt: now }, r.version);
    this.o.log(`cut-over refused: ${reason}; replication goes on`);
    await taskEvents(this.o.spec).emit('Cut Over Refused', {
      taskId,
      reason,
      fix,
      quietTimeoutMs: r.value.quietTimeoutMs,
    });
  }

  private accept(r: Versioned<CutOverRequest>): void {
    this.request = r;
    this.accepted = true;
    this.done = true;
    clearInterval(this.timer);
  }
}

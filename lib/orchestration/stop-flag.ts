import type { TaskStore } from '../state/task-store.ts';

const STOP_POLL_MS = 2000;

/**
 * `redis-dts stop` sets a flag on the task item: polled off the data path, read between chunks or
 * batches. A missed poll is retried at the next tick.
 */
export class StopFlag {
  private requested = false;
  private readonly timer: NodeJS.Timeout;

  constructor(store: TaskStore, taskId: string, pollMs = STOP_POLL_MS) {
    this.timer = setInterval(() => {
      store.isStopRequested(taskId).then(
        (r) => {
          this.requested ||= r;
        },
        () => undefined,
      );
    }, pollMs);
    this.timer.unref();
  }

  get stopRequested(): boolean {
    return this.requested;
  }

  close(): void {
    clearInterval(this.timer);
  }
}

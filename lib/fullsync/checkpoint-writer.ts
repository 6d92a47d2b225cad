import { DtsError } from '../errors.ts';
import { type TaskStore, type UnitCheckpoint, VersionConflictError } from '../state/task-store.ts';

/**
 * Persists unit checkpoints without putting DynamoDB latency or CPU on the data path: at most one
 * write per unit is in flight, it always carries the newest progress, and writes are spaced by
 * `minIntervalMs` (a conditional put costs more than copying a 1000-key chunk). A crash loses at
 * most the chunks applied since the last completed write, about that interval of work; they are
 * read and RESTOREd again, which REPLACE makes harmless.
 */
export class CheckpointWriter {
  private readonly store: TaskStore;
  private readonly taskId: string;
  private readonly versions = new Map<string, number | undefined>();
  private readonly pending = new Map<string, UnitCheckpoint>();
  private readonly writing = new Map<string, Promise<void>>();
  private error: unknown;
  private flushing = false;
  private readonly sleepers: (() => void)[] = [];

  private readonly minIntervalMs: number;

  constructor(
    store: TaskStore,
    taskId: string,
    versions: Map<string, number>,
    options: { minIntervalMs?: number } = {},
  ) {
    this.store = store;
    this.taskId = taskId;
    this.minIntervalMs = options.minIntervalMs ?? 250;
    for (const [unit, v] of versions) this.versions.set(unit, v);
  }

  /** Queues the newest checkpoint of a unit; throws the first failed write, if any. */
  update(cp: UnitCheckpoint): void {
    if (this.error) throw this.error;
    this.pending.set(cp.unitId, cp);
    if (!this.writing.has(cp.unitId)) this.writing.set(cp.unitId, this.drain(cp.unitId));
  }

  /** Waits until every queued checkpoint is stored (without waiting out the interval). */
  async flush(): Promise<void> {
    this.flushing = true;
    try {
      for (const wake of this.sleepers.splice(0)) wake();
      while (this.writing.size > 0) await Promise.all(this.writing.values());
    } finally {
      this.flushing = false;
    }
    if (this.error) throw this.error;
  }

  private pause(ms: number): Promise<void> | undefined {
    if (ms <= 0 || this.flushing) return undefined;
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this.sleepers.push(done);
      const sleepers = this.sleepers;
      function done() {
        clearTimeout(timer);
        const i = sleepers.indexOf(done);
        if (i >= 0) sleepers.splice(i, 1);
        resolve();
      }
    });
  }

  private async drain(unitId: string): Promise<void> {
    try {
      for (let cp = this.pending.get(unitId); cp; cp = this.pending.get(unitId)) {
        this.pending.delete(unitId);
        const expected = this.versions.get(unitId);
        const started = performance.now();
        try {
          this.versions.set(unitId, await this.store.putCheckpoint(this.taskId, cp, expected));
          await this.pause(this.minIntervalMs - (performance.now() - started));
        } catch (e) {
          if (e instanceof VersionConflictError) {
            throw new DtsError(
              'TASK_CONFLICT',
              `another run of task '${this.taskId}' is writing the same checkpoint (${unitId})`,
              'stop the other run first, or give this one its own --task-id',
            );
          }
          throw e;
        }
      }
    } catch (e) {
      this.error ??= e;
    } finally {
      this.writing.delete(unitId);
    }
  }
}

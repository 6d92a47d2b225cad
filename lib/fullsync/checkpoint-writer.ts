import { DtsError } from '../errors.ts';
import { type TaskStore, type UnitCheckpoint, VersionConflictError } from '../state/task-store.ts';

/**
 * Persists unit checkpoints without putting DynamoDB latency on the data path: chunks are applied
 * faster than one conditional write completes, so at most one write per unit is in flight and it
 * always carries the newest progress. A crash loses at most the chunks applied since the last
 * completed write; they are read and RESTOREd again (REPLACE makes that harmless).
 */
export class CheckpointWriter {
  private readonly store: TaskStore;
  private readonly taskId: string;
  private readonly versions = new Map<string, number | undefined>();
  private readonly pending = new Map<string, UnitCheckpoint>();
  private readonly writing = new Map<string, Promise<void>>();
  private error: unknown;

  constructor(store: TaskStore, taskId: string, versions: Map<string, number>) {
    this.store = store;
    this.taskId = taskId;
    for (const [unit, v] of versions) this.versions.set(unit, v);
  }

  /** Queues the newest checkpoint of a unit; throws the first failed write, if any. */
  update(cp: UnitCheckpoint): void {
    if (this.error) throw this.error;
    this.pending.set(cp.unitId, cp);
    if (!this.writing.has(cp.unitId)) this.writing.set(cp.unitId, this.drain(cp.unitId));
  }

  /** Waits until every queued checkpoint is stored. */
  async flush(): Promise<void> {
    while (this.writing.size > 0) await Promise.all(this.writing.values());
    if (this.error) throw this.error;
  }

  private async drain(unitId: string): Promise<void> {
    try {
      for (let cp = this.pending.get(unitId); cp; cp = this.pending.get(unitId)) {
        this.pending.delete(unitId);
        const expected = this.versions.get(unitId);
        try {
          this.versions.set(unitId, await this.store.putCheckpoint(this.taskId, cp, expected));
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

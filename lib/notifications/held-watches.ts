import type { KeyspaceWatch } from './keyspace-watch.ts';

/**
 * Keyspace watches opened by CaptureStart and kept, in this process, until the task's Incremental state
 * takes them over (a local run executes every state in one process, across continued executions).
 * Whatever is still held when the run ends is closed, so a failed full sync leaves no subscription open.
 */
export class HeldWatches {
  private readonly watches = new Map<string, KeyspaceWatch>();

  async hold(taskId: string, watch: KeyspaceWatch): Promise<void> {
    const before = this.watches.get(taskId);
    this.watches.set(taskId, watch);
    await before?.close();
  }

  take(taskId: string): KeyspaceWatch | undefined {
    const watch = this.watches.get(taskId);
    this.watches.delete(taskId);
    return watch;
  }

  async closeAll(): Promise<void> {
    const all = [...this.watches.values()];
    this.watches.clear();
    await Promise.all(all.map((w) => w.close()));
  }
}

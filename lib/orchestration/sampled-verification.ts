import { taskEvents } from '../events/task-events.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import type { TaskRecord, TaskStore } from '../state/task-store.ts';
import type { TaskSpec } from '../task/spec.ts';
import { verifyTask } from '../verify/verify-task.ts';
import type { VerifyReport } from '../verify/verify-types.ts';
import { inconsistencyDetail } from './inconsistency-event.ts';

/**
 * While incremental sync runs, a sample of keys is verified on a schedule (like DTS's incremental data
 * verification) and the count of inconsistent keys goes into the task's status. Rounds with delays
 * between them let keys that were merely in flight drop out, as in `redis-dts verify`. Runs beside the
 * apply loop; never fails the task: an error is logged and the next run tries again.
 */
export class SampledVerification {
  private readonly o: {
    spec: TaskSpec;
    taskId: string;
    source: RedisEndpoint;
    target: RedisEndpoint;
    store: TaskStore;
    log: (message: string) => void;
    /** Told each run's count of inconsistent keys (the compute shape publishes it as a metric). */
    onResult?: (inconsistentKeys: number) => void;
  };
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(o: SampledVerification['o']) {
    this.o = o;
  }

  start(): void {
    const { intervalMs } = this.o.spec.verify.duringIncremental;
    if (intervalMs === 0 || this.o.spec.verify.mode === 'off') return;
    this.schedule(intervalMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.abort.abort();
    await this.running;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
        if (!this.abort.signal.aborted) this.schedule(this.o.spec.verify.duringIncremental.intervalMs);
      });
    }, ms);
    this.timer.unref();
  }

  private async runOnce(): Promise<void> {
    const { spec, store, taskId } = this.o;
    try {
      const report = await verifyTask({
        spec: {
          ...spec,
          verify: { ...spec.verify, mode: 'full', sampleRate: spec.verify.duringIncremental.sampleRate },
        },
        source: this.o.source,
        target: this.o.target,
        signal: this.abort.signal,
        maxExamples: 3,
      });
      if (this.abort.signal.aborted) return;
      await store.updateTask(taskId, { sampledVerification: summary(report) });
      this.o.onResult?.(report.keysDiffering);
      if (report.keysDiffering > 0) {
        await taskEvents(spec).emit('Inconsistency Found', inconsistencyDetail(taskId, 'sampled', report));
      }
      this.o.log(
        `sampled verification: ${report.keysDiffering} inconsistent of ${report.keysCompared} keys compared ` +
          `(${report.sampleRate * 100}% sample, ${report.rounds} round(s))`,
      );
    } catch (e) {
      if (!this.abort.signal.aborted) this.o.log(`sampled verification failed: ${(e as Error).message}`);
    }
  }
}

function summary(report: VerifyReport): NonNullable<TaskRecord['sampledVerification']> {
  return {
    at: new Date().toISOString(),
    keysCompared: report.keysCompared,
    inconsistentKeys: report.keysDiffering,
    examples: Object.values(report.categories)
      .flatMap((c) => c.examples)
      .slice(0, 5),
  };
}

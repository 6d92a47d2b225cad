import { CaughtUpDetector, type LagSample } from '../events/caught-up-detector.ts';
import { taskEvents } from '../events/task-events.ts';
import type { TaskSpec } from '../task/spec.ts';

/** The Caught Up event of a run, from its combined progress (either incremental reader). */
export class CaughtUpSignal {
  private readonly detector: CaughtUpDetector;
  private readonly spec: TaskSpec;
  private readonly taskId: string;

  constructor(spec: TaskSpec, taskId: string) {
    this.spec = spec;
    this.taskId = taskId;
    this.detector = new CaughtUpDetector(spec.events.caughtUp);
  }

  onProgress(p: LagSample): void {
    if (!this.detector.observe(p, Date.now())) return;
    const { lagMs, forMs } = this.spec.events.caughtUp;
    void taskEvents(this.spec).emit('Caught Up', {
      taskId: this.taskId,
      lagMs: p.lagMs ?? null,
      bytesBehind: p.bytesBehind ?? null,
      thresholdMs: lagMs,
      forMs,
    });
  }
}

import { taskEvents } from '../events/task-events.ts';
import type { ProgressSink } from '../progress/progress-reporter.ts';
import type { TaskStore } from '../state/task-store.ts';
import { onlyKeptExtras, summaryLine, verifyFailedError } from '../verify/summary.ts';
import { verifyTask } from '../verify/verify-task.ts';
import type { VerifyReport } from '../verify/verify-types.ts';
import { recordCutOverVerify } from './cut-over-state.ts';
import { inconsistencyDetail } from './inconsistency-event.ts';
import { type SecretValues, stepEndpoints } from './step-endpoints.ts';
import type { TaskStepInput } from './step-types.ts';

export interface VerifyStepResult {
  skipped: boolean;
  keysCompared: number;
  summary: string;
}

/**
 * The Verify state: compares the target with the source as the spec says (`verify.mode: off` skips it).
 * Differences that persist through every round fail the task, naming example keys.
 */
export async function verifyStep(
  input: TaskStepInput,
  o: {
    store: TaskStore;
    secrets?: SecretValues;
    progress?: ProgressSink;
    /** Told the whole report (the CLI prints its summary). */
    onReport?: (report: VerifyReport) => void;
  },
): Promise<VerifyStepResult> {
  const { taskId, spec } = input;
  if (spec.verify.mode === 'off') {
    const summary = 'verify: skipped';
    await recordCutOverVerify(o.store, taskId, {
      mode: 'off',
      skipped: true,
      consistent: true,
      keysCompared: 0,
      keysDiffering: 0,
      summary,
    });
    return { skipped: true, keysCompared: 0, summary };
  }
  await o.store.updateTask(taskId, { phase: 'verify' });
  const { source, target } = stepEndpoints(spec, o.secrets);
  const report = await verifyTask({ spec, source, target, progress: o.progress });
  o.onReport?.(report);
  const summary = summaryLine(report);
  if (report.keysDiffering > 0) {
    await taskEvents(spec).emit('Inconsistency Found', inconsistencyDetail(taskId, 'final', report));
  }
  const failed = !report.consistent && !onlyKeptExtras(report, spec);
  await recordCutOverVerify(o.store, taskId, {
    mode: spec.verify.mode,
    skipped: false,
    consistent: !failed,
    keysCompared: report.keysCompared,
    keysDiffering: report.keysDiffering,
    summary,
  });
  if (failed) throw verifyFailedError(report);
  return { skipped: false, keysCompared: report.keysCompared, summary };
}

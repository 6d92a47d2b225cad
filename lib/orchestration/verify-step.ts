import type { ProgressSink } from '../progress/progress-reporter.ts';
import type { TaskStore } from '../state/task-store.ts';
import { onlyKeptExtras, summaryLine, verifyFailedError } from '../verify/summary.ts';
import { verifyTask } from '../verify/verify-task.ts';
import type { VerifyReport } from '../verify/verify-types.ts';
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
  if (input.spec.verify.mode === 'off') return { skipped: true, keysCompared: 0, summary: 'verify: skipped' };
  await o.store.updateTask(input.taskId, { phase: 'verify' });
  const { source, target } = stepEndpoints(input.spec, o.secrets);
  const report = await verifyTask({ spec: input.spec, source, target, progress: o.progress });
  o.onReport?.(report);
  const summary = summaryLine(report);
  if (!report.consistent && !onlyKeptExtras(report, input.spec)) throw verifyFailedError(report);
  return { skipped: false, keysCompared: report.keysCompared, summary };
}

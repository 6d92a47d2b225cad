import { DtsError } from '../errors.ts';
import type { PrecheckReport } from './types.ts';

/** A resumed task's destination holds its own partial copy: that is not the "existing keys" block means. */
export function precheckForResume(report: PrecheckReport, resuming: boolean): PrecheckReport {
  if (!resuming) return report;
  const items = report.items.map((i) =>
    i.id === 'existing-keys' && i.status !== 'passed'
      ? {
          ...i,
          status: 'passed' as const,
          detail: 'resuming this task: the keys are its own partial copy',
          fix: undefined,
        }
      : i,
  );
  const status = items.some((i) => i.status === 'failed')
    ? 'failed'
    : items.some((i) => i.status === 'warning')
      ? 'warning'
      : 'passed';
  return { ...report, items, status };
}

/** Failed items stop the task; warnings stop it unless acknowledged (DTS asks the same question). */
export function assertPrecheckAllows(report: PrecheckReport, acknowledgeWarnings: boolean): void {
  const failed = report.items.filter((i) => i.status === 'failed');
  if (failed.length > 0) {
    throw new DtsError(
      'PRECHECK_FAILED',
      `precheck failed: ${failed.map((i) => `${i.title}: ${i.detail}`).join('; ')}; nothing was written`,
      failed[0]!.fix ?? 'see the precheck report above',
    );
  }
  const warnings = report.items.filter((i) => i.status === 'warning');
  if (warnings.length > 0 && !acknowledgeWarnings) {
    throw new DtsError(
      'PRECHECK_WARNINGS',
      `precheck has ${warnings.length} warning(s): ${warnings.map((i) => i.title).join(', ')}; nothing was written`,
      'read the warnings above, then rerun with --yes (acknowledgeWarnings: true) to go ahead, or fix them',
    );
  }
}

import { DtsError } from '../errors.ts';
import type { TaskSpec } from '../task/spec.ts';
import { CATEGORIES, type DifferenceCategory, type VerifyReport } from './verify-types.ts';

const NAMES: Record<DifferenceCategory, string> = {
  missing: 'missing on the target',
  extra: 'extra on the target',
  type: 'type differs',
  value: 'value differs',
  ttl: 'TTL differs',
};

/** One line for logs and the terminal: the verdict, the counts per category, and the pace. */
export function summaryLine(r: VerifyReport): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const scope =
    `${n(r.keysCompared)} key(s) compared${r.sampleRate < 1 ? ` (sample ${r.sampleRate})` : ''}, ` +
    `${r.mode} mode, ${r.rounds} round(s), ${r.seconds.toFixed(1)} s, ${n(r.keysPerSecond)} keys/s`;
  if (r.mode === 'off') return 'verify: skipped (mode off)';
  if (r.consistent) return `verify: consistent: ${scope}`;
  const counts = CATEGORIES.filter((c) => r.categories[c].count > 0)
    .map((c) => `${n(r.categories[c].count)} ${NAMES[c]}`)
    .join(', ');
  const truncated = r.truncated ? ' [too many to re-check all]' : '';
  if (r.stopped) {
    const found =
      r.keysDiffering > 0 ? `${n(r.keysDiffering)} key(s) differ so far (${counts})` : 'no difference so far';
    return `verify: STOPPED before every key was compared: ${found}${truncated}; ${scope}`;
  }
  return `verify: INCONSISTENT: ${n(r.keysDiffering)} key(s) differ (${counts})${truncated}; ${scope}`;
}

/** Lines naming example keys per category, for the terminal after the summary line. */
export function exampleLines(r: VerifyReport): string[] {
  const lines: string[] = [];
  for (const c of CATEGORIES) {
    const cat = r.categories[c];
    if (cat.count === 0) continue;
    lines.push(`  ${NAMES[c]}: ${cat.count.toLocaleString('en-US')}`);
    cat.examples.forEach((e, i) => {
      lines.push(`    ${e}: ${cat.details[i]}`);
    });
    if (cat.count > cat.examples.length) lines.push(`    … and ${cat.count - cat.examples.length} more`);
  }
  return lines;
}

/** A verification that still differs after its rounds, as the error that fails a task (CLI and Verify step). */
export function verifyFailedError(report: VerifyReport): DtsError {
  return new DtsError(
    'VERIFY_FAILED',
    `verification after the copy found differences: ${[
      summaryLine(report),
      ...exampleLines(report)
        .slice(0, 5)
        .map((l) => l.trim()),
    ].join('; ')}`,
    'if the source was written during the copy, differences are expected (a full sync is a snapshot per chunk; ' +
      'incremental sync closes them); otherwise run the same task again, and `redis-dts verify` to see every difference',
  );
}

/** Under `overwrite` the destination may keep keys the source lacks: those alone are not a failed copy. */
export function onlyKeptExtras(report: VerifyReport, spec: TaskSpec): boolean {
  if (spec.existingKeys !== 'overwrite') return false;
  const { extra, ...others } = report.categories;
  return extra.count > 0 && Object.values(others).every((c) => c.count === 0);
}

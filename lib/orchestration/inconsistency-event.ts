import type { TaskEventDetail } from '../events/event-types.ts';
import { CATEGORIES, type VerifyReport } from '../verify/verify-types.ts';

/** The Inconsistency Found detail of a report with differences: counts and a few example keys. */
export function inconsistencyDetail(
  taskId: string,
  verification: 'sampled' | 'final',
  report: VerifyReport,
): TaskEventDetail<'Inconsistency Found'> {
  const examples: string[] = [];
  for (const c of CATEGORIES) {
    const cat = report.categories[c];
    cat.examples.forEach((key, i) => {
      if (examples.length < 10) examples.push(`${key}: ${c}${cat.details[i] ? ` (${cat.details[i]})` : ''}`);
    });
  }
  return {
    taskId,
    verification,
    keysCompared: report.keysCompared,
    keysDiffering: report.keysDiffering,
    examples,
  };
}

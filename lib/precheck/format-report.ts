import type { PrecheckReport, PrecheckStatus } from './types.ts';

export interface FormatOptions {
  /** Line width to wrap the detail column at (default 110; a detail column never gets narrower than 40). */
  width?: number;
}

const STATUS_WORD: Record<PrecheckStatus, string> = {
  passed: 'Passed',
  warning: 'Warning',
  failed: 'Failed',
  skipped: 'Skipped',
};

const GAP = '  ';
const MIN_DETAIL = 40;
const FIX = 'fix: ';

/**
 * The report as a table (item | status | detail), details wrapped under their column, and a `fix:`
 * line under every item that did not pass, then the verdict.
 */
export function formatPrecheckReport(report: PrecheckReport, opts: FormatOptions = {}): string {
  const width = opts.width ?? 110;
  const header = ['Item', 'Status', 'Detail'] as const;
  const itemW = Math.max(header[0].length, ...report.items.map((i) => i.title.length));
  const statusW = Math.max(header[1].length, ...Object.values(STATUS_WORD).map((w) => w.length));
  const indent = itemW + GAP.length + statusW + GAP.length;
  const detailW = Math.max(MIN_DETAIL, width - indent);
  const pad = ' '.repeat(indent);

  const lines: string[] = [];
  const src = report.source;
  const dst = report.target;
  if (src || dst) {
    const side = (s: typeof src) => (s ? `${s.address} (${s.version})` : '(not connected)');
    lines.push(`Precheck: source ${side(src)} → destination ${side(dst)}`, '');
  }
  lines.push(`${header[0].padEnd(itemW)}${GAP}${header[1].padEnd(statusW)}${GAP}${header[2]}`);
  for (const item of report.items) {
    const [first = '', ...rest] = wrap(item.detail, detailW);
    lines.push(
      `${item.title.padEnd(itemW)}${GAP}${STATUS_WORD[item.status].padEnd(statusW)}${GAP}${first}`.trimEnd(),
    );
    for (const line of rest) lines.push(pad + line);
    if (item.fix && (item.status === 'warning' || item.status === 'failed')) {
      // Continuation lines of the fix hang under its text, so the fix reads as one block.
      const [fixFirst = '', ...fixRest] = wrap(item.fix, detailW - FIX.length);
      lines.push(`${pad}${FIX}${fixFirst}`);
      for (const line of fixRest) lines.push(pad + ' '.repeat(FIX.length) + line);
    }
  }
  lines.push('', `Result: ${STATUS_WORD[report.status]} (${counts(report)})`);
  return `${lines.join('\n')}\n`;
}

function counts(report: PrecheckReport): string {
  const n = (s: PrecheckStatus) => report.items.filter((i) => i.status === s).length;
  const parts = [
    [n('failed'), 'failed'],
    [n('warning'), n('warning') === 1 ? 'warning' : 'warnings'],
    [n('passed'), 'passed'],
    [n('skipped'), 'skipped'],
  ] as const;
  return parts
    .filter(([count]) => count > 0)
    .map(([count, word]) => `${count} ${word}`)
    .join(', ');
}

/** Greedy word wrap; a word longer than the width (a long key name) gets a line of its own. */
export function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line === '') line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      out.push(line);
      line = word;
    }
  }
  if (line !== '' || out.length === 0) out.push(line);
  return out;
}

import { inPartsText, memorySummary } from '../fullsync/memory-summary.ts';
import { formatPrecheckReport } from '../precheck/format-report.ts';
import { runTaskLocally } from '../task/run-local.ts';
import { parseTaskSpec } from '../task/spec.ts';
import { summaryLine } from '../verify/summary.ts';
import { HELP } from './help.ts';
import { SPEC_OPTIONS, specInput } from './spec-input.ts';
import { noPositionals, parseFlags, progressSink, withStopSignals } from './task-options.ts';

const OPTIONS = {
  ...SPEC_OPTIONS,
  'state-dir': { type: 'string' },
  'in-memory': { type: 'boolean' },
  progress: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const DEFAULT_STATE_DIR = '.redis-dts';

export async function syncCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, OPTIONS, 'sync');
  noPositionals(positionals, 'sync');
  if (values.help) {
    process.stdout.write(HELP.sync!);
    return 0;
  }
  const spec = parseTaskSpec(specInput(values), { mode: 'local' });
  const progress = progressSink(values.progress, 'sync');

  // First Ctrl-C: finish the chunks in flight, checkpoint, exit 130. Second: exit at once (the
  // checkpoint still holds, a rerun resumes from it).
  return withStopSignals(progress, 'chunks', async (signal) => {
    const stateDir = values['in-memory'] ? undefined : (values['state-dir'] ?? DEFAULT_STATE_DIR);
    const summary = await runTaskLocally(spec, {
      ...(stateDir !== undefined ? { stateDir } : {}),
      progress,
      signal,
      onPrecheck: (report) => {
        if (report.status === 'passed') progress.log(`precheck passed (${report.items.length} checks)`);
        else process.stderr.write(`${formatPrecheckReport(report)}\n`);
      },
      onVerify: (report) => progress.log(summaryLine(report), { consistent: report.consistent }),
    });
    const peakRssMb = process.resourceUsage().maxRSS / 1024;
    const memory = memorySummary(summary.units, summary.rdbLoads);
    const rate = summary.seconds > 0 ? summary.keysThisRun / summary.seconds : 0;
    const copied = `${summary.keysThisRun.toLocaleString('en-US')} keys (${(summary.bytesThisRun / 1e6).toFixed(1)} MB)`;
    const inc = summary.incremental;
    const fromEvents = spec.incremental.reader === 'notifications';
    const line =
      (inc && fromEvents
        ? `sync ended (${inc.phase}): full sync copied ${copied}; incremental (keyspace notifications) ` +
          `re-copied ${(inc.keysRecopied ?? 0).toLocaleString('en-US')} changed keys; the task ran ` +
          `${summary.seconds.toFixed(1)} s`
        : inc
          ? `sync ended (${inc.phase}): full sync copied ${copied}; incremental applied ` +
            `${(inc.commandsApplied ?? 0).toLocaleString('en-US')} commands and re-copied ` +
            `${(inc.keysRecopied ?? 0).toLocaleString('en-US')} keys, ` +
            (inc.shards === 1
              ? `up to source offset ${inc.appliedOffset}; `
              : `over ${inc.shards} source shards; `) +
            `the task ran ${summary.seconds.toFixed(1)} s`
          : `${summary.stopped ? 'full sync stopped' : 'full sync done'}: ${copied}; the task ran ` +
            `${summary.seconds.toFixed(1)} s (${Math.round(rate).toLocaleString('en-US')} keys/s over precheck, copy and verify)`) +
      `; task '${summary.taskId}'` +
      `; peak RSS ${peakRssMb.toFixed(0)} MB` +
      (memory.keysInParts > 0 ? `; ${inPartsText(memory)}` : '') +
      (stateDir !== undefined ? ` (state in ${stateDir})` : '');
    process.stdout.write(`${line}\n`);
    progress.result({
      taskId: summary.taskId,
      stopped: summary.stopped,
      keys: summary.keysThisRun,
      bytes: summary.bytesThisRun,
      seconds: summary.seconds,
      keysFailed: summary.units.reduce((n, u) => n + u.keysFailed, 0),
      peakRssMb,
      keysInParts: memory.keysInParts,
      inPartsKeys: memory.inPartsKeys,
    });
    if (summary.stopped) {
      process.stderr.write(`stopped: run the same command again to resume from the checkpoint\n`);
      return 130;
    }
    return 0;
  });
}

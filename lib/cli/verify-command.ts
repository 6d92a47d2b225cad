import { writeFileSync } from 'node:fs';
import { DtsError } from '../errors.ts';
import { resolveEndpoint } from '../task/resolve-endpoint.ts';
import { parseTaskSpec } from '../task/spec.ts';
import { exampleLines, summaryLine } from '../verify/summary.ts';
import { verifyTask } from '../verify/verify-task.ts';
import { specInput } from './spec-input.ts';
import {
  ENDPOINT_OPTIONS,
  noPositionals,
  numberish,
  parseFlags,
  progressSink,
  SELECTION_OPTIONS,
  withStopSignals,
} from './task-options.ts';
import { UsageError } from './usage-error.ts';

const OPTIONS = {
  ...ENDPOINT_OPTIONS,
  ...SELECTION_OPTIONS,
  mode: { type: 'string' },
  rounds: { type: 'string' },
  'sample-rate': { type: 'string' },
  'ttl-tolerance-ms': { type: 'string' },
  'round-delay-ms': { type: 'string' },
  'max-examples': { type: 'string' },
  'memory-budget': { type: 'string' },
  report: { type: 'string' },
  progress: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const VERIFY_HELP = `Usage: redis-dts verify --source URL --target URL [options]

Compares the destination with the source, key by key, and reports every difference: keys missing on
the destination, extra keys on the destination, types, values and expiry times (TTL). Only read
commands are used (SCAN, EXISTS, TYPE, PEXPIRETIME, MEMORY USAGE, DUMP, INFO and the types' own
reads): no DEBUG, no scripts, nothing written. redis-dts' own keys (heartbeat, markers) are never
reported.

Round 1 compares every selected key (values as DUMP payloads when both servers run the same version,
as data otherwise; big keys in pages) and, meanwhile, scans the destination for keys the source lacks.
Expiries are read only while either side has keys with one (INFO keyspace). Rounds 2..N re-check only the keys that differed, after a pause, so keys still being written drop out.

Either side may be a Redis Cluster: give the URL of any one node. Every master is scanned, and each key
is read on the master that owns its slot. A cluster has db 0 only: verify other source dbs copied into
a cluster with --dbs N --db-map N:0.

Endpoints:
  --source URL, --target URL   redis://[user:password@]host:port or rediss://… (TLS)
  --source-password-env VAR    read the password from environment variable VAR (also --target-…)
  --source-tls-ca FILE         CA bundle (PEM) for rediss:// (also --target-tls-ca)
  --source-tls-insecure        accept any certificate (testing only; also --target-tls-insecure)

What to compare (as the sync copied it):
  --dbs 0,1                    source dbs (default: every db holding keys on either side)
  --db-map 0:2,1:3             source db 0 was copied into destination db 2, …
  --include-prefix P           only keys starting with P (repeatable)
  --exclude-prefix P           never keys starting with P (repeatable; wins over include)
  --spec FILE                  a JSON task spec (its verify section too); flags override it

How:
  --mode MODE                  full (default): values and TTLs | length: types and lengths |
                               exists: presence only | off: skip
  --rounds N                   1..10 (default 3): re-checks of differing keys
  --round-delay-ms MS          pause before round r (default 1000 × (r − 1))
  --sample-rate R              compare a fraction 0 < R ≤ 1 of the keys (default 1), chosen by a
                               hash of the key name
  --ttl-tolerance-ms MS        largest expiry difference counted as equal (default 100)
  --max-examples N             example keys listed per category (default 10)
  --memory-budget SIZE         bytes of values held at once (128mb, 1GiB …; default 512MiB or a
                               quarter of the machine's memory): keys over a sixteenth of it, and
                               over 8 MB in any case, are compared in pages
  --report FILE                write the full report as JSON
  --progress MODE              auto (bar on a terminal, JSON lines otherwise) | bar | json | off
  -h, --help                   this help

Exit codes: 0 consistent; 1 differences found (or a failure: cause and fix printed); 2 bad usage;
130 stopped.
`;

export async function verifyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, OPTIONS, 'verify');
  noPositionals(positionals, 'verify');
  if (values.help) {
    process.stdout.write(VERIFY_HELP);
    return 0;
  }
  const {
    mode,
    rounds,
    'sample-rate': sampleRate,
    'ttl-tolerance-ms': ttlToleranceMs,
    'round-delay-ms': roundDelay,
    'max-examples': maxExamples,
    report: reportFile,
    progress: progressMode,
    help: _help,
    ...specFlags
  } = values;
  let input: Record<string, unknown>;
  try {
    input = specInput(specFlags);
  } catch (e) {
    // The shared flag mapping names `sync` in its usage errors.
    if (e instanceof UsageError) throw new UsageError(e.message, 'verify');
    throw e;
  }
  const verify: Record<string, unknown> = { ...((input.verify ?? {}) as Record<string, unknown>) };
  if (mode !== undefined) verify.mode = mode;
  if (rounds !== undefined) verify.rounds = numberish(rounds);
  if (sampleRate !== undefined) verify.sampleRate = numberish(sampleRate);
  if (ttlToleranceMs !== undefined) verify.ttlToleranceMs = numberish(ttlToleranceMs);
  input.verify = verify;
  const spec = parseTaskSpec(input, { mode: 'local' });
  const roundDelayMs = optionalCount(roundDelay, '--round-delay-ms');
  const examples = optionalCount(maxExamples, '--max-examples');
  const progress = progressSink(progressMode, 'verify');

  return withStopSignals(progress, 'batches', async (signal) => {
    const report = await verifyTask({
      spec,
      source: resolveEndpoint(spec.source, 'source'),
      target: resolveEndpoint(spec.target, 'target'),
      progress,
      signal,
      ...(roundDelayMs !== undefined ? { roundDelayMs } : {}),
      ...(examples !== undefined ? { maxExamples: examples } : {}),
    });
    if (reportFile !== undefined) writeReport(reportFile, report);
    process.stdout.write(`${[summaryLine(report), ...exampleLines(report)].join('\n')}\n`);
    progress.result({
      consistent: report.consistent,
      keysCompared: report.keysCompared,
      keysDiffering: report.keysDiffering,
      keysPerSecond: report.keysPerSecond,
      seconds: report.seconds,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
      ...Object.fromEntries(Object.entries(report.categories).map(([c, r]) => [c, r.count])),
    });
    if (report.stopped) return 130;
    return report.consistent ? 0 : 1;
  });
}

function optionalCount(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim()))
    throw new UsageError(`${flag} '${text}': expected a whole number`, 'verify');
  return Number(text);
}

function writeReport(path: string, report: unknown): void {
  try {
    writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
  } catch (e) {
    throw new DtsError(
      'REPORT_NOT_WRITTEN',
      `cannot write the report to ${path}: ${(e as Error).message}`,
      'give --report a path in a writable directory',
    );
  }
}

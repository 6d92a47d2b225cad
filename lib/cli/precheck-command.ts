import { formatPrecheckReport } from '../precheck/format-report.ts';
import { runPrecheck } from '../precheck/run-precheck.ts';
import { parseTaskSpec } from '../task/spec.ts';
import { specInput } from './spec-input.ts';
import {
  ENDPOINT_OPTIONS,
  noPositionals,
  parseFlags,
  REPLICATION_OPTIONS,
  SELECTION_OPTIONS,
} from './task-options.ts';

const OPTIONS = {
  ...ENDPOINT_OPTIONS,
  ...REPLICATION_OPTIONS,
  ...SELECTION_OPTIONS,
  'sync-type': { type: 'string' },
  'existing-keys': { type: 'string' },
  'full-sync-reader': { type: 'string' },
  'max-keys-per-second': { type: 'string' },
  'max-bytes-per-second': { type: 'string' },
  'cross-version': { type: 'string' },
  'incremental-mode': { type: 'string' },
  'incremental-reader': { type: 'string' },
  'set-notify-keyspace-events': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const PRECHECK_HELP = `Usage: redis-dts precheck --source URL --target URL [options]

Checks that a task can run, without copying anything, and prints one line per item: Passed, Warning
or Failed, with the detail and the fix. \`sync\` runs the same checks first and stops on a failure, and
on warnings unless --yes.

Checked: both servers reachable and logged in; the destination writable (a temporary key with a TTL,
removed); source and destination not the same server and db; the destination can RESTORE a DUMP of a
source key (versions); destination memory and maxmemory-policy; the selected dbs exist; existing keys
in the destination; PSYNC and REPLCONF allowed on the source (PSYNC itself is not sent: no fork);
repl-backlog-size against the measured write rate; modules; the topology of both sides (standalone,
or a cluster's masters, slots and replicas); the heartbeat key writable on the source. PSYNC, the
backlog and the heartbeat concern incremental sync and are skipped for --sync-type full.

On a cluster side, the facts that differ per node are checked on every master: writability, existing
keys, memory (each master against its slot share of the source), maxmemory-policy, PSYNC permission,
the backlog and the heartbeat key. Modules are read on the node the URL names. The URL may name any
node, a replica included.

Options (the same as sync's, so a sync command line can be checked as it is):
  --source URL, --target URL   redis://[user:password@]host:port or rediss://… (TLS)
  --source-password-env VAR    read the password from environment variable VAR (also --target-…)
  --source-tls-ca FILE         CA bundle (PEM) for rediss:// (also --target-tls-ca)
  --source-tls-insecure        accept any certificate (testing only; also --target-tls-insecure)
  --source-psync-command NAME  the name PSYNC answers to on the source, where the provider renamed it
                               (ElastiCache: the name AWS support gives); the PSYNC item checks it
                               by that name: a wrong-arity call that the server answers without
                               replicating, and ACL DRYRUN (PSYNC itself is never sent)
  --source-replconf-command NAME  the same for REPLCONF, if the provider renamed it too
  --sync-type TYPE             full | full+incremental | incremental (default full+incremental)
  --dbs 0,1                    source dbs (default: every non-empty db)
  --db-map 0:2,1:3             write source db 0 into destination db 2, …
  --include-prefix P, --exclude-prefix P   key filter (decides which key is sampled for RESTORE)
  --existing-keys MODE         block (default): keys in the destination dbs fail the check;
                               overwrite: they are a warning
  --full-sync-reader R         auto (default) | rdb | scan: with auto or rdb, the Full sync reader item
                               says which reader the full sync takes and why (PSYNC, the source
                               machine's memory for the fork's copy-on-write, the selection's share
                               of the keys, --existing-keys, --incremental-mode, a throttle)
  --max-keys-per-second N, --max-bytes-per-second N   the task's throttle (auto then picks scan)
  --cross-version MODE         logical (default) | refuse: a destination that cannot RESTORE the
                               source's payloads (older RDB version) is a warning (keys are written
                               with type commands) or a failure
  --incremental-mode MODE      fargate (default) | lambda (rdb cannot run in Lambda windows)
  --incremental-reader R       psync (default) | notifications: with notifications, PSYNC and the
                               backlog are skipped and notify-keyspace-events is checked instead (K
                               and A needed; CONFIG GET, or where CONFIG is refused a probe key whose
                               events must come back)
  --set-notify-keyspace-events with notifications: add K and A by CONFIG SET where it is allowed
  --spec FILE                  a JSON task spec; flags override it
  --json                       print the report as JSON
  -h, --help                   this help

Exit codes: 0 passed (warnings included: they are printed); 1 an item failed; 2 bad usage.
`;

export async function precheckCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, OPTIONS, 'precheck');
  noPositionals(positionals, 'precheck');
  if (values.help) {
    process.stdout.write(PRECHECK_HELP);
    return 0;
  }
  const { json, help: _help, ...specFlags } = values;
  const spec = parseTaskSpec(specInput(specFlags), { mode: 'local' });
  const report = await runPrecheck(spec);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatPrecheckReport(report, width()));
  return report.status === 'failed' ? 1 : 0;
}

/** The terminal's width when printing to one; a fixed width otherwise, so piped output is stable. */
function width(): { width?: number } {
  return process.stdout.isTTY && process.stdout.columns ? { width: process.stdout.columns } : {};
}

import { readFileSync } from 'node:fs';
import { PRECHECK_HELP } from './precheck-command.ts';
import { VERIFY_HELP } from './verify-command.ts';

export const VERSION: string = packageVersion();

/** The version in package.json, found by walking up (the same code runs from lib/ and from dist/lib/). */
function packageVersion(): string {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      return (JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { version: string }).version;
    } catch {
      if (dir.pathname === '/') return 'unknown';
    }
  }
}

const MAIN = `redis-dts ${VERSION}: one-way Redis synchronization (Redis OSS, Valkey, Tair): an exact full sync,
then (soon) continuous incremental sync over the replication protocol.

Usage: redis-dts <command> [options]

Commands:
  sync      copy a source Redis into a destination: the AWS state machine run here, its state
            in an embedded DynamoDB; precheck first (failures stop it, and warnings unless
            --yes), verification after
  precheck  check source and destination before a sync: connectivity, auth, versions, memory,
            eviction policy, existing keys, dbs, PSYNC permission, backlog size, modules
  verify    compare source and destination key by key (value, type, TTL, extra keys), in rounds
            so keys still being written drop out; exit 1 and a report when they differ
  status    show a task's phase, progress per db, and last error
  list      list the tasks in a state directory
  stop      ask a running task to stop cleanly (it can be resumed)
  help CMD  show a command's options

Examples:
  redis-dts sync --source redis://10.0.0.5:6379 --target redis://127.0.0.1:6380 --sync-type full
  REDIS_DTS_SOURCE_PASSWORD=... redis-dts sync --source rediss://user@src:6380 --target redis://dst:6379 \\
      --sync-type full --dbs 0,1 --db-map 1:5 --include-prefix user: --existing-keys overwrite
  redis-dts status

Exit codes: 0 done; 1 failed (the cause and the fix are printed); 2 bad usage; 130 stopped (resumable).
`;

const SYNC = `Usage: redis-dts sync --source URL --target URL [options]

Copies the source into the destination: every selected db is SCANned in chunks; each chunk is read in
one MULTI/EXEC (DUMP + PEXPIRETIME + INFO replication), so it carries the source replication offset it
was read at, and written with pipelined RESTORE … REPLACE ABSTTL (values and absolute expiries exact).
After every chunk the cursor is checkpointed: run the same command again after a crash or Ctrl-C and it
resumes where it stopped.

Endpoints:
  --source URL, --target URL   redis://[user:password@]host:port[/db] or rediss://… (TLS)
  --source-password-env VAR    read the password from environment variable VAR (also --target-…);
                               a value "user:password" logs in as an ACL user. Without it,
                               REDIS_DTS_SOURCE_PASSWORD / REDIS_DTS_TARGET_PASSWORD are used when set.
  --source-tls-ca FILE         CA bundle (PEM) to trust for rediss:// (also --target-tls-ca)
  --source-tls-insecure        accept any certificate (testing only; also --target-tls-insecure)

What to copy:
  --sync-type TYPE             full | full+incremental | incremental (default full+incremental;
                               incremental sync is not built yet: use full)
  --dbs 0,1                    source dbs to copy (default: every non-empty db)
  --db-map 0:2,1:3             write source db 0 into destination db 2, …
  --include-prefix P           copy only keys starting with P (repeatable)
  --exclude-prefix P           never copy keys starting with P (repeatable; wins over include)
  --existing-keys MODE         block (default): refuse to start when a selected destination db has
                               keys, naming up to 10; overwrite: replace keys of the same name

Pace and state:
  --max-keys-per-second N      throttle (default: unlimited)
  --max-bytes-per-second N     throttle; accepts 10MB, 512KiB … (default: unlimited)
  --chunk-keys N               keys per SCAN chunk and transaction (default 1000)
  --task-id ID                 the task's name in the state (default: derived from the endpoints, so
                               rerunning the same command resumes the same task)
  --state-dir DIR              where the embedded DynamoDB keeps task state (default .redis-dts)
  --in-memory                  keep no state on disk (no resume)
  --spec FILE                  a JSON task spec (schema/task-spec.schema.json); flags override it
  --progress MODE              auto (bar on a terminal, JSON lines otherwise) | bar | json | off
  --verify MODE                after the copy, compare source and destination: full (values,
                               TTLs) | length | exists | off (default full; see redis-dts help verify)
  -y, --yes                    acknowledge precheck warnings
  -h, --help                   this help

Big keys: a value whose DUMP is larger than the destination's proto-max-bulk-len is copied in parts
(HSCAN/SSCAN/ZSCAN/LRANGE/XRANGE/GETRANGE into a temporary key, then RENAME) instead of one RESTORE.
`;

const STATUS = `Usage: redis-dts status [TASK-ID] [--state-dir DIR] [--json]

Shows a task's status, phase, progress per unit (db), and last error with its fix. Without TASK-ID,
the most recent task in the state directory.
`;

const LIST = `Usage: redis-dts list [--state-dir DIR] [--json]

Lists the tasks in the state directory (default .redis-dts), newest last.
`;

const STOP = `Usage: redis-dts stop TASK-ID [--state-dir DIR]

Asks a running task to stop: it finishes the chunks in flight, writes its checkpoint and exits (code
130). Run the same sync command again to resume. Works while the task runs (it reaches the running
task's embedded DynamoDB).
`;

export const HELP: Record<string, string> = {
  main: MAIN,
  sync: SYNC,
  precheck: PRECHECK_HELP,
  verify: VERIFY_HELP,
  status: STATUS,
  list: LIST,
  stop: STOP,
};

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
  start     start a task on the deployed AWS state machine (StartExecution) from a JSON spec
  status    show a task's phase, progress per db, and last error (--table: a task on AWS)
  list      list the tasks in a state directory (--table: in the deployed table)
  stop      ask a running task to stop cleanly (a full sync can be resumed; an incremental sync
            ends through verification and cleanup)
  cutover   ask a running incremental task to finish once the source is quiet: every change
            applied, a final verification, the Task Cut Over event; refused while still written
  help CMD  show a command's options

Examples:
  redis-dts sync --source redis://10.0.0.5:6379 --target redis://127.0.0.1:6380 --until caught-up
  redis-dts sync --source redis://10.0.0.5:6379 --target redis://127.0.0.1:6380 --sync-type full
  REDIS_DTS_SOURCE_PASSWORD=... redis-dts sync --source rediss://user@src:6380 --target redis://dst:6379 \\
      --sync-type full --dbs 0,1 --db-map 1:5 --include-prefix user: --existing-keys overwrite
  redis-dts status

Exit codes: 0 done; 1 failed (the cause and the fix are printed); 2 bad usage; 130 stopped (resumable).
`;

const SYNC = `Usage: redis-dts sync --source URL --target URL [options]

Copies the source into the destination, then keeps replaying its changes (full+incremental, the
default). Full sync: every selected db is SCANned in chunks; each chunk is read in one MULTI/EXEC (DUMP +
PEXPIRETIME + INFO replication), so it carries the source replication offset it was read at, and written
with pipelined RESTORE … REPLACE ABSTTL (values and absolute expiries exact). Incremental sync: redis-dts
attaches to the source as a replica (PSYNC) from the offset taken before the full sync, re-copies the keys
written while it was copying, then applies every change in MULTI … EXEC batches that also move a marker
key on the destination, so nothing is applied twice or lost, whatever crashes or network drops happen.
Everything is checkpointed: run the same command again after a crash or Ctrl-C and it resumes.

Versions: Redis 6.0 to 7.2 and Valkey 8, into a destination not older. Redis 6.x has no PEXPIRETIME (the
full sync reads PTTL + TIME) and sends EXPIRE, SETEX, SET … EX and RESTORE ttl with relative times:
redis-dts turns them into absolute ones at the source's clock (the heartbeat measures it), or re-copies
the key when the stream is not shown live (after a resume, a paused link; always with --no-heartbeat).

Redis Cluster, on either side: give any node's URL. A cluster source is copied and streamed per master
(each with its own PSYNC stream and marker, following a master's failover); a cluster destination gets
each key on the master of its slot, and commands whose keys span slots are split or their keys copied
again, so no CROSSSLOT stops the sync. A cluster has db 0 only: --dbs 0 (or --db-map N:0).

Endpoints:
  --source URL, --target URL   redis://[user:password@]host:port[/db] or rediss://… (TLS)
  --source-password-env VAR    read the password from environment variable VAR (also --target-…);
                               a value "user:password" logs in as an ACL user. Without it,
                               REDIS_DTS_SOURCE_PASSWORD / REDIS_DTS_TARGET_PASSWORD are used when set.
  --source-tls-ca FILE         CA bundle (PEM) to trust for rediss:// (also --target-tls-ca)
  --source-tls-insecure        accept any certificate (testing only; also --target-tls-insecure)
  --source-psync-command NAME  the name PSYNC answers to on the source where the provider renamed it.
                               ElastiCache: AWS support can enable replication to an external replica
                               under an account-specific name; give it here. Used by the precheck, the
                               start-offset capture and every replication link. (A PSYNC renamed with
                               rename-command on Redis OSS answers as SYNC: redis-dts says so and stops.)
  --source-replconf-command NAME  the same for REPLCONF, if the provider renamed it too
                               ACL rules keep the original names: +psync +replconf.
                               No PSYNC at all (a managed source as it comes):
                               --incremental-reader notifications, or --sync-type full.

What to copy:
  --sync-type TYPE             full | full+incremental | incremental (default full+incremental);
                               incremental alone expects the destination to hold the data already
  --dbs 0,1                    source dbs to copy (default: every non-empty db)
  --db-map 0:2,1:3             write source db 0 into destination db 2, …
  --include-prefix P           copy only keys starting with P (repeatable)
  --exclude-prefix P           never copy keys starting with P (repeatable; wins over include)
  --existing-keys MODE         block (default): refuse to start when a selected destination db has
                               keys, naming up to 10; overwrite: replace keys of the same name

Events (schema/task-events.schema.json; on AWS they go to the stack's bus as well):
  --events-file FILE           append each lifecycle event to FILE as a JSON line: Task Started,
                               Precheck Passed/Failed, Full Sync Completed, Caught Up, Inconsistency
                               Found, Backlog Lost, Task Failed/Stopped/Succeeded, Cut Over Refused,
                               Task Cut Over. An event that cannot be written is reported on stderr;
                               the sync goes on
  --caught-up-lag D            Caught Up is sent once lag stays at or under D (default 1s; 500ms, 2s …)
  --caught-up-for D            … for this long (default 10s); without a heartbeat: nothing behind

Incremental sync:
  --until WHEN                 stopped (default): replay until Ctrl-C, SIGTERM or redis-dts stop;
                               caught-up: end once every change is applied and the source has had no
                               writes for a second (a cut-over: stop the writers, wait, switch)
  --no-heartbeat               do not write redis-dts:heartbeat:<task> to the source every second (for
                               read-only source users; lag is then shown in bytes only)
  --incremental-mode MODE      fargate (default) | lambda: how AWS runs it; locally both run in-process
  --incremental-reader R       psync (default): the replication stream, every command exactly once.
                               notifications: for sources that refuse PSYNC (ElastiCache, MemoryDB):
                               subscribes to keyspace events before the full sync, copies each changed
                               key's current value again (DUMP/RESTORE, DEL when gone), detects lost
                               events (dropped subscription, missing heartbeat probes, FLUSHDB/SWAPDB
                               seen in INFO commandstats) and repairs them by a compare-and-copy round.
                               Eventually equal; exact at cut-over: --until caught-up ends with a
                               repair round. Not a per-command replay. Supports --dbs, --db-map,
                               --include/--exclude-prefix; refuses --incremental-mode lambda. The
                               source needs notify-keyspace-events with K and A (e.g. KEA)
  --set-notify-keyspace-events with notifications: add K and A to the source's notify-keyspace-events
                               by CONFIG SET (where CONFIG is allowed); without it the precheck fails
                               and names the setting (ElastiCache: the parameter group's
                               notify-keyspace-events)
  --verify-every MS            while it runs, verify a sample of keys this often (default 300000, 0
                               never) and show the inconsistent count in redis-dts status
  --verify-sample-rate R       the fraction each of those checks compares (default 0.01)
  --on-backlog-lost WHAT       fail (default): stop with BACKLOG_LOST when the source's backlog no
                               longer holds the position to resume from. resync: empty the destination
                               dbs the task writes and take the full sync again from a new RDB snapshot,
                               continuing on its link (needs --existing-keys block, not Lambda windows)
  The source's repl-backlog-size must hold the writes made during the full sync (precheck estimates
  it), unless the full sync reads the RDB, whose stream goes on on the snapshot's link; when it does not,
  the task stops with BACKLOG_LOST and says so (or resyncs, above).

Pace and state:
  --max-keys-per-second N      throttle (default: unlimited)
  --max-bytes-per-second N     throttle; accepts 10MB, 512KiB … (default: unlimited)
  --chunk-keys N               keys per SCAN chunk and transaction (default 1000)
  --full-sync-reader R         auto (default): the precheck picks rdb when it is safe, else scan, and
                               says which and why. scan: SCAN chunks, DUMP in stamped transactions,
                               resumable per chunk. rdb: the replication snapshot (the source forks
                               once, as for a new replica), RESTOREd without decoding, then the
                               incremental sync goes on on the same link from the snapshot's offset;
                               an interrupted rdb full sync starts over (the destination dbs it wrote
                               are emptied first)
  --cross-version MODE         logical (default): a destination of an older RDB version than the
                               source (7.2 or Valkey 8 → 6.x or 7.0), which refuses its DUMP payloads,
                               gets every key written with type commands instead of RESTORE (auto
                               takes the scan reader, rdb is refused; a precheck warning names both
                               versions, to acknowledge with --yes). refuse: the precheck fails
  --memory-budget SIZE         bytes of data this process may hold at once (copy, verify and
                               re-copies together; 128mb, 1GiB …; default 512MiB or a quarter of the
                               machine's memory, on AWS the worker's memory less its baseline).
                               Values over a sixteenth of it are copied and compared in parts, one
                               at a time; status and the summary show the peak RSS and those keys
  --task-id ID                 the task's name in the state (default: derived from the endpoints, so
                               rerunning the same command resumes the same task)
  --state-dir DIR              where the embedded DynamoDB keeps task state (default .redis-dts), one store
                               per task: several tasks run from one folder; a running task is not run twice
  --in-memory                  keep no state on disk (no resume)
  --spec FILE                  a JSON task spec (schema/task-spec.schema.json); flags override it
  --progress MODE              auto (bar on a terminal, JSON lines otherwise) | bar | json | off
  --verify MODE                after the copy, compare source and destination: full (values,
                               TTLs) | length | exists | off (default full; see redis-dts help verify)
  -y, --yes                    acknowledge precheck warnings
  -h, --help                   this help

Big keys: a value whose MEMORY USAGE is over a sixteenth of --memory-budget, or whose DUMP is larger
than the destination's proto-max-bulk-len, is copied in parts (HSCAN/SSCAN/ZSCAN/LRANGE/XRANGE/
GETRANGE into a temporary key, then RENAME) instead of one RESTORE.
`;

const START = `Usage: redis-dts start --input FILE|- (--stack-name NAME | --state-machine-arn ARN) [--region R]
                       [--name NAME]

Starts a task on the deployed stack: one execution of its state machine (StartExecution) with the
input {"spec": <the JSON of FILE>}. The spec is checked first, in AWS mode (passwords only as
passwordSecretArn), and nothing is sent when it has a problem (exit 2). Prints the execution ARN, its
console URL and the status command that follows the task. Starting a spec whose task id ran before
resumes that task from its checkpoints.

  --input FILE                 the task spec (examples/task-aws.json); - reads it from stdin
  --stack-name NAME            the deployed stack (default name RedisDts): its StateMachineArn and
                               TableName outputs are read with CloudFormation DescribeStacks
  --state-machine-arn ARN      or the state machine itself (the stack's StateMachineArn output)
  --region R                   default: the region in the ARN (they must agree), or AWS_REGION
  --name NAME                  execution name (default: generated by Step Functions)
  --endpoint-url URL           Step Functions endpoint, for LocalStack and tests (default: AWS)
  -h, --help                   this help

Needs AWS credentials (the default chain: AWS_PROFILE, AWS_ACCESS_KEY_ID…) allowed
states:StartExecution on the state machine (and cloudformation:DescribeStacks with --stack-name).
`;

const STATUS = `Usage: redis-dts status [TASK-ID] [--state-dir DIR | --table NAME [--region R]] [--json]

Shows a task's status, phase, progress per unit (db), and last error with its fix. Without TASK-ID,
the most recent task in the state directory. --table reads the deployed DynamoDB table (the stack's
TableName output) instead, with the AWS credentials of the default chain.
`;

const LIST = `Usage: redis-dts list [--state-dir DIR | --table NAME [--region R]] [--json]

Lists the tasks in the state directory (default .redis-dts), or in the deployed table with --table,
newest last.
`;

const STOP = `Usage: redis-dts stop TASK-ID [--state-dir DIR | --table NAME [--region R]]

Asks a running task to stop: it finishes the chunks in flight, writes its checkpoint and exits (code
130). Run the same sync command again to resume. Works while the task runs (it reaches the running
task's embedded DynamoDB). With --table it asks a task running on AWS: its full sync stops between
chunks, the task is recorded as stopped and the execution ends failed; start the same spec again to
resume.
`;

const CUTOVER = `Usage: redis-dts cutover TASK-ID [--quiet-timeout 60s] [--no-wait]
                       [--state-dir DIR | --table NAME [--region R]]

Asks a running incremental task to finish, for the switch of the application to the destination:
stop the application's writes to the source first. The task waits until every change read is
applied and the source has had no writes (but the heartbeat) for a second (what --until caught-up
waits for), ends its incremental sync, runs the final verification (verify.mode of its spec), sends
the Task Cut Over event with the verification's summary, and ends as succeeded. This command waits
for that and prints the summary (exit 0).

Refused, exit 1 with the reason and the fix, and the Cut Over Refused event, when the source is
still being written after --quiet-timeout: the task is not ended and goes on replicating; stop the
writes and ask again. Refused at once when the task is not running, is a full sync only, or is still
in its full sync. With --incremental-reader notifications, quiet means no keyspace event for a second
and nothing left to copy; a final repair round then proves the destination equal before the verify.

  --quiet-timeout D            how long to wait for the source to go quiet (default 60s; 90s, 2m …)
  --no-wait                    ask and return; follow with redis-dts status (or the events)
  --state-dir DIR              a local task (default .redis-dts): reaches the running sync's store
  --table NAME                 a task on AWS: the stack's TableName output (dynamodb:GetItem and
                               PutItem); on the bus, a "Cut Over Task" event with the detail
                               {"taskId": …, "quietTimeoutMs": …} does the same
  --region R                   with --table
  -h, --help                   this help
`;

export const HELP: Record<string, string> = {
  main: MAIN,
  sync: SYNC,
  precheck: PRECHECK_HELP,
  verify: VERIFY_HELP,
  start: START,
  status: STATUS,
  list: LIST,
  stop: STOP,
  cutover: CUTOVER,
};

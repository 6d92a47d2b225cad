import { z } from 'zod';
import { redactUrl } from '../redis/url.ts';
import { BYTE_SIZE_TEXT, MIN_MEMORY_BUDGET, parseByteSize } from '../util/memory-budget.ts';
import { awsPasswordProblems, EndpointSchema, SourceEndpointSchema } from './endpoint-spec.ts';
import { EventsSchema } from './events-spec.ts';
import { describeTaskSpecIssues, TaskSpecError } from './spec-errors.ts';
import {
  always,
  dbNumber,
  flag,
  fraction,
  intIn,
  isRecord,
  lineIssue,
  MAX_DB,
  oneOf,
  positive,
  text,
} from './spec-fields.ts';

/**
 * The task spec: one schema for the JSON pasted into the Step Functions console, the CLI flags (mapped
 * to the same object by the CLI) and an EventBridge event's detail. Objects are strict, so a typo is an
 * error rather than a silently ignored setting. Every issue carries its expectation as its message
 * ("an integer 1..65535"); spec-errors.ts turns issues into `<path>: expected …, got …` lines.
 */

export const SCHEMA_FILE = 'schema/task-spec.schema.json';
export { MAX_DB };

const TASK_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const DB_KEY = /^(?:0|[1-9]\d?|1\d\d|2[0-4]\d|25[0-5])$/;

const KeyFilterSchema = z
  .strictObject(
    {
      include: z
        .array(text('a non-empty key prefix'), { error: 'an array of key prefixes' })
        .optional()
        .meta({
          description:
            'Copy only keys starting with one of these prefixes (case-sensitive, byte for byte). Absent or ' +
            'empty: every key.',
          examples: [['user:', 'session:']],
        }),
      exclude: z
        .array(text('a non-empty key prefix'), { error: 'an array of key prefixes' })
        .optional()
        .meta({
          description: 'Never copy keys starting with one of these prefixes. Wins over include.',
          examples: [['tmp:']],
        }),
    },
    { error: 'an object' },
  )
  .meta({
    description:
      "Which keys to copy, by prefix. redis-dts' own keys (redis-dts:heartbeat:, redis-dts:marker:, " +
      'redis-dts:tmp:) are never copied.',
  });

const ThrottleSchema = z
  .strictObject(
    {
      maxKeysPerSecond: positive().optional().meta({
        description: 'Upper bound on keys written per second (full sync and incremental). Absent: no limit.',
      }),
      maxBytesPerSecond: positive()
        .optional()
        .meta({ description: 'Upper bound on payload bytes written per second. Absent: no limit.' }),
    },
    { error: 'an object' },
  )
  .meta({
    description: 'Rate limits that spare a busy source or target. Absent: as fast as the servers allow.',
  });

export const FULL_SYNC_READERS = ['scan', 'rdb', 'auto'] as const;
export const CROSS_VERSION_MODES = ['logical', 'refuse'] as const;

const FullSyncSchema = z
  .strictObject(
    {
      reader: oneOf(FULL_SYNC_READERS)
        .default('auto')
        .meta({
          description:
            'scan: SCAN chunks read with DUMP in stamped transactions, resumable per chunk, run by CopyChunk ' +
            'Lambdas on AWS. rdb: the snapshot a new replica gets (PSYNC, the source forks once), cut into ' +
            'RESTORE payloads without decoding, and the incremental sync continues on the same link from the ' +
            'snapshot offset (no catch-up); runs where one process holds the link (locally, the Fargate ' +
            'replicator), restarts from the beginning when interrupted. auto: the precheck picks rdb when it ' +
            'is safe (see the README) and scan otherwise, and says which and why.',
        }),
      chunkKeys: intIn(10, 100_000)
        .default(1000)
        .meta({
          description:
            'Keys read per SCAN chunk. Each chunk is read in one transaction and checkpointed, so larger ' +
            'chunks mean fewer round trips and longer blocking of the source per transaction.',
        }),
      maxInFlightBytes: intIn(1, Number.MAX_SAFE_INTEGER, 'a positive integer (bytes)')
        .optional()
        .meta({
          description:
            'Upper bound on bytes read from the source but not yet written to the target (back-pressure). ' +
            'Absent: a default sized for the worker.',
        }),
      crossVersion: oneOf(CROSS_VERSION_MODES)
        .default('logical')
        .meta({
          description:
            'What to do when the destination reads an older RDB version than the source writes (7.2 or ' +
            "Valkey 8 → 6.x or 7.0), so it refuses the source's DUMP payloads. logical: copy every key with " +
            'type commands (SET, RPUSH, SADD, ZADD, HSET, XADD with its ids, consumer groups and pending ' +
            'entries) instead of RESTORE, with the scan reader; the precheck says so as a warning, which ' +
            'the task needs acknowledged (--yes) before it writes. refuse: the precheck fails instead. ' +
            "Either way nothing changes for a destination that reads the source's payloads.",
        }),
      checkpointIntervalMs: intIn(0, 60_000)
        .default(250)
        .meta({
          description:
            'Least time between two checkpoint writes of a db. Every write carries the newest applied chunk; ' +
            'after a crash, at most this much work is read again. 0 writes after every chunk (slower: a ' +
            'DynamoDB write costs more than copying a chunk).',
        }),
    },
    { error: 'an object' },
  )
  .meta({ description: 'Tuning of the full sync (the one-time copy of every key).' });

const HeartbeatSchema = z
  .strictObject(
    {
      enabled: flag()
        .default(true)
        .meta({
          description:
            'Write a heartbeat key to the source every intervalMs, so the replication offset keeps moving ' +
            'and lag can be measured even when the source is idle.',
        }),
      prefix: text()
        .default('redis-dts:heartbeat:')
        .meta({ description: 'Prefix of the heartbeat key. The key is never copied to the target.' }),
      intervalMs: intIn(100, 60_000)
        .default(1000)
        .meta({ description: 'Milliseconds between heartbeat writes.' }),
    },
    { error: 'an object' },
  )
  .meta({ description: 'The source heartbeat, which measures incremental lag.' });

const IncrementalSchema = z
  .strictObject(
    {
      mode: oneOf(['fargate', 'lambda'])
        .default('fargate')
        .meta({
          description:
            'fargate: one long-running replicator container streams changes continuously (lowest lag). ' +
            'lambda: a loop of short Lambda windows, each reading the stream for a while (no container; ' +
            'higher lag). Locally both run in-process.',
        }),
      reader: oneOf(['psync', 'notifications'])
        .default('psync')
        .meta({
          description:
            'How changes are read from the source. psync: the replication stream, every command exactly ' +
            'once. notifications: for sources without PSYNC (ElastiCache, MemoryDB): keyspace events ' +
            '(notify-keyspace-events KA) mark keys, whose current values are copied again; lost events are ' +
            'found (reconnects, heartbeat probes) and repaired by a compare-and-copy round. Eventually ' +
            'equal, exact at cut-over (until caught-up ends with a repair round); not a per-command replay. ' +
            'Supports dbs, dbMap, keyFilter and heartbeat; needs mode fargate (or a local run).',
        }),
      setNotifyKeyspaceEvents: flag()
        .default(false)
        .meta({
          description:
            "reader notifications: when the source's notify-keyspace-events lacks K and A, add them with " +
            'CONFIG SET (where CONFIG is allowed). Without it, the precheck fails and names the setting.',
        }),
      heartbeat: HeartbeatSchema.prefault({}),
      until: oneOf(['stopped', 'caught-up'])
        .default('stopped')
        .meta({
          description:
            'stopped: replay changes until the task is stopped (redis-dts stop, Ctrl-C, SIGTERM). caught-up: ' +
            'end the task once every change is applied and the source has had no writes for a second ' +
            '(a cut-over: stop the application, wait for this, switch).',
        }),
      onBacklogLost: oneOf(['fail', 'resync'])
        .default('fail')
        .meta({
          description:
            "What to do when the source's replication backlog no longer holds the position to resume from " +
            '(the source answered +FULLRESYNC): fail the task, or redo the full sync: the destination dbs the ' +
            'task writes are emptied, every shard is loaded again from a new RDB snapshot and the stream ' +
            'continues on its link. resync needs the replicator (not Lambda windows) and existingKeys block.',
        }),
    },
    { error: 'an object' },
  )
  .superRefine(checkNotificationReader, always)
  .meta({
    description: 'Settings of the incremental sync (the continuous replay of changes after the full sync).',
  });

const DuringIncrementalSchema = z
  .strictObject(
    {
      intervalMs: intIn(0, 86_400_000)
        .default(300_000)
        .meta({
          description:
            'While incremental sync runs, verify a sample of keys this often (in rounds, like verify) and ' +
            'record the count of inconsistent keys in the task status. 0: never.',
        }),
      sampleRate: fraction()
        .default(0.01)
        .meta({ description: 'Fraction of keys each scheduled verification compares (by key-name hash).' }),
    },
    { error: 'an object' },
  )
  .meta({ description: 'Sampled verification on a schedule during incremental sync (full mode).' });

const VerifySchema = z
  .strictObject(
    {
      mode: oneOf(['full', 'length', 'exists', 'off'])
        .default('full')
        .meta({
          description:
            'full: compare values and expiries key by key. length: compare types and lengths. exists: ' +
            'only check that each key exists on the target. off: skip verification.',
        }),
      rounds: intIn(1, 10)
        .default(3)
        .meta({
          description:
            'How many times to re-check keys that differ: keys still being written on the source differ ' +
            'for a moment, so a difference counts only if it persists through every round.',
        }),
      sampleRate: fraction()
        .default(1)
        .meta({ description: 'Fraction of keys to verify: 1 checks every key, 0.1 a random tenth.' }),
      ttlToleranceMs: intIn(0, 3_600_000).default(100).meta({
        description: 'Largest difference in remaining time to live (milliseconds) still counted as equal.',
      }),
      duringIncremental: DuringIncrementalSchema.prefault({}),
    },
    { error: 'an object' },
  )
  .meta({ description: 'Verification of the target against the source after the sync.' });

const BUDGET_WHAT = `bytes (an integer, or a string like "128mb", "1.5gb", "512MiB"), at least ${MIN_MEMORY_BUDGET}`;

/** Bytes as a number or a size text ("128mb"): resolveMemoryBudget reads either. */
const byteSize = () =>
  z
    .union(
      [
        intIn(MIN_MEMORY_BUDGET, Number.MAX_SAFE_INTEGER, BUDGET_WHAT),
        z.string({ error: BUDGET_WHAT }).regex(BYTE_SIZE_TEXT, { error: BUDGET_WHAT }),
      ],
      { error: BUDGET_WHAT },
    )
    .refine((v) => typeof v === 'number' || (parseByteSize(v) ?? 0) >= MIN_MEMORY_BUDGET, {
      error: BUDGET_WHAT,
    });

const LimitsSchema = z
  .strictObject(
    {
      memoryBudget: byteSize()
        .optional()
        .meta({
          description:
            'Bytes of data one worker process may hold at once, for the full sync, the verification and ' +
            'the re-copies of the incremental sync together (its runtime baseline comes on top). A value ' +
            'larger than a sixteenth of it (by MEMORY USAGE, before it is read) is copied and compared in ' +
            'parts, one such value at a time. Absent: sized to the compute it runs on (on AWS the ' +
            "Lambda's or container's memory less its baseline, from REDIS_DTS_MEMORY_BUDGET); locally " +
            "512 MiB, or a quarter of the machine's memory when that is less.",
          examples: ['128mb', 1073741824],
        }),
    },
    { error: 'an object' },
  )
  .meta({ description: 'Resource limits of the workers.' });

export const TaskSpecSchema = z
  .strictObject(
    {
      name: z
        .string({ error: 'a string of 1..256 characters' })
        .min(1, { error: 'a string of 1..256 characters' })
        .max(256, { error: 'a string of 1..256 characters' })
        .optional()
        .meta({
          description:
            'A descriptive name shown in listings; need not be unique. Absent: generated from the endpoints ' +
            'and the date, e.g. "src-host:6379 → dst-host:6380 2026-11-25".',
        }),
      taskId: z
        .string({ error: 'an id of 1..64 letters, digits, _, . or -' })
        .regex(TASK_ID, { error: 'an id of 1..64 letters, digits, _, . or -' })
        .optional()
        .meta({
          description:
            'Identifies the task and its checkpoints: starting a task with the id of an unfinished one ' +
            'resumes it. 1..64 characters from A-Z a-z 0-9 _ . -. Absent: derived from the endpoints ' +
            '(<srcHost>-<srcPort>-to-<dstHost>-<dstPort>).',
        }),
      source: SourceEndpointSchema.meta({
        description:
          'The Redis server to copy from: {"url": "redis://host:port"} or {"host": "…", "port": 6379}. Its ' +
          'data is only read (a heartbeat key is written during incremental sync: see incremental.heartbeat).',
      }),
      target: EndpointSchema.meta({
        description:
          'The Redis server to copy into: {"url": "redis://host:port"} or {"host": "…", "port": 6379}. See ' +
          'existingKeys for keys it already holds.',
      }),
      syncType: oneOf(['full+incremental', 'full', 'incremental'])
        .default('full+incremental')
        .meta({
          description:
            'full+incremental: copy everything, then keep replaying changes until stopped. full: copy once ' +
            'and finish. incremental: only replay changes (the target must already hold the data).',
        }),
      existingKeys: oneOf(['block', 'overwrite'])
        .default('block')
        .meta({
          description:
            'block: the precheck fails if the target already holds keys in the selected dbs. overwrite: ' +
            'replace keys that exist on the target (others are left alone).',
        }),
      dbs: z
        .array(dbNumber(), { error: 'an array of db numbers 0..255' })
        .min(1, { error: 'at least one db (omit dbs to copy every non-empty db)' })
        .superRefine(checkUniqueDbs, always)
        .optional()
        .meta({
          description: 'Source databases to copy (0..255, each once). Absent: every non-empty source db.',
          uniqueItems: true,
          examples: [[0, 1]],
        }),
      dbMap: z
        .record(z.string().regex(DB_KEY, { error: 'a source db number "0".."255" as the key' }), dbNumber(), {
          error: 'an object mapping source db numbers to target db numbers',
        })
        .superRefine(checkDbMapTargets, always)
        .optional()
        .meta({
          description:
            'Write a source db into a different target db: {"<source db>": <target db>}. Dbs not named keep ' +
            'their number. Two source dbs may not land in the same target db.',
          examples: [{ '0': 2, '1': 3 }],
        }),
      keyFilter: KeyFilterSchema.optional(),
      throttle: ThrottleSchema.optional(),
      fullSync: FullSyncSchema.prefault({}),
      incremental: IncrementalSchema.prefault({}),
      verify: VerifySchema.prefault({}),
      limits: LimitsSchema.prefault({}),
      events: EventsSchema.prefault({}),
      acknowledgeWarnings: flag()
        .default(false)
        .meta({
          description:
            'Start even if the precheck reports warnings (errors always stop the task). Read the precheck ' +
            'report first.',
        }),
    },
    { error: 'a JSON object' },
  )
  .superRefine((spec, ctx) => checkDbsAgainstDbMap(spec, ctx), always)
  .meta({
    title: 'redis-dts task spec',
    description:
      'One-way sync of a source Redis into a target Redis. Paste this object as the Step Functions ' +
      'execution input, send it as the detail of an EventBridge event, or give it to `redis-dts sync ' +
      '--spec`. Unknown fields are errors.',
    examples: [
      {
        source: { url: 'redis://10.0.0.5:6379' },
        target: { url: 'redis://10.0.1.7:6379' },
        syncType: 'full',
      },
    ],
  });

export type TaskSpecInput = z.input<typeof TaskSpecSchema>;
export type TaskSpec = z.output<typeof TaskSpecSchema>;
/** Either side's endpoint (the source's also may name renamed replication commands). */
export type EndpointSpec = TaskSpec['source'] | TaskSpec['target'];
export type EndpointSpecInput = TaskSpecInput['source'] | TaskSpecInput['target'];

export interface ParseTaskSpecOptions {
  /** 'aws' refuses plain passwords and password variables: they would ride in the execution input. */
  mode?: 'local' | 'aws';
}

/** Validates a spec and applies its defaults; throws one TaskSpecError listing every problem. */
export function parseTaskSpec(input: unknown, opts: ParseTaskSpecOptions = {}): TaskSpec {
  const result = TaskSpecSchema.safeParse(input);
  const problems = result.success ? [] : describeTaskSpecIssues(result.error.issues, input, TaskSpecSchema);
  if (opts.mode === 'aws') problems.push(...awsPasswordProblems(input));
  if (problems.length > 0 || !result.success) throw new TaskSpecError(problems);
  return result.data;
}

/**
 * A copy safe to store (DynamoDB) and show: plain passwords dropped, a password in a URL replaced by ***.
 * The names of password variables and secret ARNs stay: they are how a resumed task logs in again.
 */
export function redactSpec(spec: TaskSpec): TaskSpec {
  const copy = structuredClone(spec);
  for (const ep of [copy.source, copy.target]) {
    delete ep.password;
    if ('url' in ep) ep.url = redactUrl(ep.url);
  }
  return copy;
}

/** The JSON Schema (draft 2020-12) of the spec as a user writes it: defaulted fields are optional. */
export function taskSpecJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(TaskSpecSchema, { target: 'draft-2020-12', io: 'input' }) as Record<string, unknown>;
}

/** The text of schema/task-spec.schema.json. */
export function renderTaskSpecJsonSchema(): string {
  return `${JSON.stringify(taskSpecJsonSchema(), null, 2)}\n`;
}

export { defaultTaskId, generateTaskName } from './task-name.ts';

/** The combinations the notification reader cannot honour, refused rather than silently ignored. */
function checkNotificationReader(inc: unknown, ctx: z.core.$RefinementCtx): void {
  if (!isRecord(inc) || inc.reader !== 'notifications') return;
  if (inc.mode === 'lambda') {
    lineIssue(
      ctx,
      ['mode'],
      'lambda cannot run reader "notifications": a subscription does not outlive a Lambda window, and ' +
        'events between windows would be lost (use mode fargate, the default)',
    );
  }
  if (inc.onBacklogLost === 'resync') {
    lineIssue(ctx, ['onBacklogLost'], 'has no meaning for reader "notifications", which reads no backlog');
  }
}

function checkUniqueDbs(dbs: unknown, ctx: z.core.$RefinementCtx): void {
  if (!Array.isArray(dbs)) return;
  const seen = new Set<unknown>();
  const repeated = new Set<unknown>();
  for (const db of dbs) (seen.has(db) ? repeated : seen).add(db);
  if (repeated.size > 0) {
    ctx.addIssue({
      code: 'custom',
      message: 'each db once',
      params: { got: `${[...repeated].join(', ')} more than once` },
    });
  }
}

function checkDbMapTargets(map: unknown, ctx: z.core.$RefinementCtx): void {
  if (!isRecord(map)) return;
  for (const collision of collisions(Object.entries(map))) {
    ctx.addIssue({
      code: 'custom',
      message: 'a different target db for each source db',
      params: { got: collision },
    });
  }
}

/** With dbs given the whole mapping is known: an unmapped db keeps its number and may collide. */
function checkDbsAgainstDbMap(spec: unknown, ctx: z.core.$RefinementCtx): void {
  if (!isRecord(spec) || !Array.isArray(spec.dbs) || !isRecord(spec.dbMap)) return;
  const map = spec.dbMap;
  const unmapped = spec.dbs.filter((db) => Number.isInteger(db) && !Object.hasOwn(map, String(db)));
  if (unmapped.length === 0) return;
  const explicit = Object.entries(map).filter(([, to]) => Number.isInteger(to));
  for (const db of new Set(unmapped)) {
    const clash = explicit.find(([from, to]) => to === db && from !== String(db));
    if (clash) {
      ctx.addIssue({
        code: 'custom',
        path: ['dbMap'],
        message: 'a different target db for each source db',
        params: {
          got: `dbs ${clash[0]} and ${db} both mapped to ${db} (db ${db} is in dbs but not in dbMap)`,
        },
      });
    }
  }
}

function collisions(entries: [string, unknown][]): string[] {
  const byTarget = new Map<unknown, string[]>();
  for (const [from, to] of entries) {
    if (!Number.isInteger(to)) continue;
    byTarget.set(to, [...(byTarget.get(to) ?? []), from]);
  }
  return [...byTarget]
    .filter(([, froms]) => froms.length > 1)
    .map(([to, froms]) => `dbs ${froms.join(' and ')} both mapped to ${to}`);
}

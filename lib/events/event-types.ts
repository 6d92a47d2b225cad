import { z } from 'zod';

/**
 * The task lifecycle events: one zod schema per detail, from which both the TypeScript types the
 * emitters use and schema/task-events.schema.json (bin/generate-event-schema.ts) are derived, so the
 * documented detail can never drift from what is sent. Detail-types are stable names: rules on the bus
 * and scripts reading --events-file match on them.
 */

export const EVENT_SOURCE = 'redis-dts';
export const EVENTS_SCHEMA_FILE = 'schema/task-events.schema.json';

const taskId = z.string().meta({ description: 'The task id (the spec taskId, or the derived one).' });
const count = (description: string) => z.number().int().min(0).meta({ description });

const PrecheckItemSchema = z
  .object({
    id: z.string(),
    title: z.string(),
    status: z.enum(['passed', 'warning', 'failed', 'skipped']),
    detail: z.string(),
    fix: z.string().optional(),
  })
  .meta({ description: 'One check of the precheck report: what, the verdict, why, and what to do.' });

const VerifySummarySchema = z
  .object({
    mode: z.enum(['full', 'length', 'exists', 'off']),
    skipped: z.boolean().meta({ description: 'verify.mode off: nothing was compared.' }),
    consistent: z.boolean(),
    keysCompared: count('Keys compared.'),
    keysDiffering: count('Keys that differed through every round.'),
    summary: z.string().meta({ description: 'The one-line summary redis-dts prints.' }),
  })
  .meta({ description: 'The final verification of a task.' });

export const EVENT_DETAILS = {
  'Task Started': z
    .object({
      taskId,
      name: z.string(),
      syncType: z.enum(['full+incremental', 'full', 'incremental']),
      source: z.string().meta({ description: 'host:port of the source (never a password).' }),
      target: z.string().meta({ description: 'host:port of the destination.' }),
      resumed: z.boolean().meta({ description: 'The task ran before: this run resumes its checkpoints.' }),
    })
    .meta({ description: 'A task was started (a run of `redis-dts sync`, an execution with a new spec).' }),
  'Precheck Passed': z
    .object({
      taskId,
      status: z
        .enum(['passed', 'warning'])
        .meta({ description: 'warning: acknowledged (acknowledgeWarnings).' }),
      items: z.array(PrecheckItemSchema),
    })
    .meta({ description: 'The precheck lets the task run.' }),
  'Precheck Failed': z
    .object({
      taskId,
      status: z.enum(['failed', 'warning']).meta({ description: 'warning: warnings not acknowledged.' }),
      items: z.array(PrecheckItemSchema),
    })
    .meta({
      description: 'The precheck stopped the task; the failed or warning items say why and what to do.',
    }),
  'Full Sync Completed': z
    .object({
      taskId,
      reader: z.enum(['scan', 'rdb']),
      keys: count('Keys written to the destination by the full sync.'),
      bytes: count('Payload bytes of those keys.'),
      seconds: z.number().min(0).meta({ description: 'From the start of the full sync to its end.' }),
    })
    .meta({ description: 'Every key of the selected dbs is copied; incremental sync (if any) follows.' }),
  'Caught Up': z
    .object({
      taskId,
      lagMs: z
        .number()
        .nullable()
        .meta({ description: 'Replication lag at the time (null without a heartbeat).' }),
      bytesBehind: z.number().nullable(),
      thresholdMs: z.number().meta({ description: 'events.caughtUp.lagMs' }),
      forMs: z.number().meta({ description: 'events.caughtUp.forMs: how long lag stayed under it.' }),
    })
    .meta({
      description:
        'Incremental sync has kept lag under the threshold for the given time (once, and again after ' +
        'it fell behind). Without a heartbeat, zero bytes behind counts as under it.',
    }),
  'Inconsistency Found': z
    .object({
      taskId,
      verification: z.enum(['sampled', 'final']).meta({
        description: 'sampled: the scheduled one during incremental sync; final: the Verify state.',
      }),
      keysCompared: count('Keys compared.'),
      keysDiffering: count('Keys that differed through every round.'),
      examples: z.array(z.string()).meta({ description: 'A few differing keys with how they differ.' }),
    })
    .meta({ description: 'A verification found keys that differ between source and destination.' }),
  'Backlog Lost': z
    .object({
      taskId,
      action: z
        .enum(['fail', 'resync'])
        .meta({ description: 'incremental.onBacklogLost: the task fails, or takes the full sync again.' }),
      cause: z.string(),
      fix: z.string(),
    })
    .meta({ description: "The source's replication backlog no longer holds the position to resume from." }),
  'Task Failed': z
    .object({
      taskId,
      code: z.string().meta({ description: 'The error code (DtsError code, PrecheckFailed, States.*).' }),
      cause: z.string(),
      fix: z.string(),
    })
    .meta({ description: 'The task failed; cause and fix are what redis-dts status shows.' }),
  'Task Stopped': z
    .object({
      taskId,
      phase: z.string().meta({ description: 'Where it stopped: full-sync (resumable) or incremental.' }),
    })
    .meta({ description: 'The task was stopped (redis-dts stop, Ctrl-C, SIGTERM).' }),
  'Task Succeeded': z
    .object({ taskId, keysWritten: count('Keys the full sync wrote (scan reader).') })
    .meta({ description: 'The task ended on its own: a full sync, or --until caught-up.' }),
  'Cut Over Refused': z
    .object({
      taskId,
      reason: z.string(),
      fix: z.string(),
      quietTimeoutMs: z.number(),
    })
    .meta({
      description:
        'A cut-over was asked for but the source was still being written after the quiet timeout; the ' +
        'task goes on replicating.',
    }),
  'Task Cut Over': z
    .object({
      taskId,
      quietTimeoutMs: z.number(),
      verify: VerifySummarySchema,
    })
    .meta({
      description:
        'A cut-over finished: every change was applied, the source had gone quiet, the final ' +
        'verification ran and the task ended as succeeded. Switch the application now.',
    }),
} as const;

export type TaskEventType = keyof typeof EVENT_DETAILS;
export type TaskEventDetail<T extends TaskEventType> = z.output<(typeof EVENT_DETAILS)[T]>;
export const TASK_EVENT_TYPES = Object.keys(EVENT_DETAILS) as TaskEventType[];

/** A line of --events-file: EventBridge's own field names, so one jq filter reads both. */
export interface TaskEventEnvelope<T extends TaskEventType = TaskEventType> {
  time: string;
  source: typeof EVENT_SOURCE;
  'detail-type': T;
  detail: TaskEventDetail<T>;
}

/** The JSON Schema of every event (an envelope per detail-type), draft 2020-12. */
export function taskEventsJsonSchema(): Record<string, unknown> {
  const envelopes = TASK_EVENT_TYPES.map((type) =>
    z.object({
      time: z.string().meta({ description: 'ISO 8601, when it was emitted.' }),
      source: z.literal(EVENT_SOURCE),
      'detail-type': z.literal(type),
      detail: EVENT_DETAILS[type],
    }),
  );
  const schema = z.union(envelopes as unknown as [z.ZodType, z.ZodType, ...z.ZodType[]]).meta({
    title: 'redis-dts task lifecycle events',
    description:
      'Events a task emits, on the EventBridge bus (REDIS_DTS_EVENT_BUS; source redis-dts, these ' +
      'detail-types, the detail below) and as JSON lines in --events-file (the same fields).',
  });
  return z.toJSONSchema(schema, { target: 'draft-2020-12' }) as Record<string, unknown>;
}

export function renderTaskEventsJsonSchema(): string {
  return `${JSON.stringify(taskEventsJsonSchema(), null, 2)}\n`;
}

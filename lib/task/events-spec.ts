import { z } from 'zod';
import { intIn, text } from './spec-fields.ts';

// The task spec's `events` section (its own file: spec.ts holds the rest of the spec).

const CaughtUpSchema = z
  .strictObject(
    {
      lagMs: intIn(0, 3_600_000).default(1000).meta({
        description: 'Lag (milliseconds, from the heartbeat) at or under which the task counts as caught up.',
      }),
      forMs: intIn(0, 86_400_000).default(10_000).meta({
        description: 'How long lag must stay at or under lagMs before the Caught Up event is sent.',
      }),
    },
    { error: 'an object' },
  )
  .meta({
    description:
      'When the Caught Up event is sent: lag under lagMs for forMs (without a heartbeat: nothing behind).',
  });

export const EventsSchema = z
  .strictObject(
    {
      file: text('a file path')
        .optional()
        .meta({
          description:
            'Append every lifecycle event to this file as a JSON line (schema/task-events.schema.json), for ' +
            "a local run. On AWS the events go to the stack's bus (REDIS_DTS_EVENT_BUS) instead.",
          examples: ['events.jsonl'],
        }),
      caughtUp: CaughtUpSchema.prefault({}),
    },
    { error: 'an object' },
  )
  .meta({
    description:
      'Task lifecycle events (Task Started … Task Cut Over, see schema/task-events.schema.json): where they ' +
      "go besides the stack's EventBridge bus, and when Caught Up is sent.",
  });

#!/usr/bin/env node
/**
 * Writes schema/task-events.schema.json from the zod schemas of lib/events/event-types.ts (the task
 * lifecycle events' details). `--check` (for CI) changes nothing and exits 1 when it is out of date.
 */
import { EVENTS_SCHEMA_FILE, renderTaskEventsJsonSchema } from '../lib/events/event-types.ts';
import { writeOrCheck } from './generated-file.ts';

writeOrCheck(
  EVENTS_SCHEMA_FILE,
  renderTaskEventsJsonSchema(),
  process.argv.includes('--check'),
  'node bin/generate-event-schema.ts',
);

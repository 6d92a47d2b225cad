import { type EventSink, TaskEvents } from './emitter.ts';
import { EVENT_BUS_ENV, EventBridgeSink } from './eventbridge-sink.ts';
import { FileEventSink } from './file-sink.ts';

// One sink per file and per bus in a process: every step of a local run appends through one chain.
const files = new Map<string, FileEventSink>();
const buses = new Map<string, EventBridgeSink>();

/**
 * The emitter of a task: its spec's events.file (a local run, --events-file), and the bus named by
 * REDIS_DTS_EVENT_BUS (the stack's workers). Neither: events are dropped, at no cost.
 */
export function taskEvents(
  /** A parsed task spec, or the stored (redacted) one. */
  spec: unknown,
  env: Record<string, string | undefined> = process.env,
): TaskEvents {
  const sinks: EventSink[] = [];
  const file = eventsFileOf(spec);
  if (file) {
    if (!files.has(file)) files.set(file, new FileEventSink(file));
    sinks.push(files.get(file)!);
  }
  const bus = env[EVENT_BUS_ENV];
  if (bus) {
    if (!buses.has(bus)) buses.set(bus, new EventBridgeSink(bus));
    sinks.push(buses.get(bus)!);
  }
  return new TaskEvents(sinks);
}

function eventsFileOf(spec: unknown): string | undefined {
  const events = (spec as { events?: { file?: unknown } } | undefined)?.events;
  return typeof events?.file === 'string' && events.file !== '' ? events.file : undefined;
}

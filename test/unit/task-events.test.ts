import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CaughtUpDetector } from '../../lib/events/caught-up-detector.ts';
import { type EventSink, TaskEvents } from '../../lib/events/emitter.ts';
import { TASK_EVENT_TYPES, taskEventsJsonSchema } from '../../lib/events/event-types.ts';
import { FileEventSink } from '../../lib/events/file-sink.ts';
import { taskEvents } from '../../lib/events/task-events.ts';
import { parseTaskSpec } from '../../lib/task/spec.ts';
import { durationMs } from '../../lib/util/duration.ts';

const dir = mkdtempSync(join(tmpdir(), 'redis-dts-events-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = { source: { url: 'redis://a:6379' }, target: { url: 'redis://b:6379' } };

describe('Caught Up rule', () => {
  const sample = (
    lagMs: number | undefined,
    phase = 'incremental',
    bytesBehind: number | undefined = 10,
  ) => ({
    phase,
    lagMs,
    bytesBehind,
  });

  it('fires once lag has stayed under the threshold for the time, then not again until it fell behind', () => {
    const d = new CaughtUpDetector({ lagMs: 100, forMs: 1000 });
    expect(d.observe(sample(50), 0)).toBe(false);
    expect(d.observe(sample(80), 999)).toBe(false);
    expect(d.observe(sample(90), 1000)).toBe(true);
    expect(d.observe(sample(10), 5000)).toBe(false);
    expect(d.observe(sample(500), 6000)).toBe(false);
    expect(d.observe(sample(10), 7000)).toBe(false);
    expect(d.observe(sample(10), 8000)).toBe(true);
  });

  it('a sample over the threshold restarts the time; the catch-up never counts', () => {
    const d = new CaughtUpDetector({ lagMs: 100, forMs: 1000 });
    expect(d.observe(sample(0, 'catch-up'), 0)).toBe(false);
    expect(d.observe(sample(0, 're-copy'), 5000)).toBe(false);
    expect(d.observe(sample(0), 6000)).toBe(false);
    expect(d.observe(sample(101), 6500)).toBe(false);
    expect(d.observe(sample(0), 7000)).toBe(false);
    expect(d.observe(sample(0), 7999)).toBe(false);
    expect(d.observe(sample(0), 8000)).toBe(true);
  });

  it('without a heartbeat, nothing behind counts as caught up', () => {
    const d = new CaughtUpDetector({ lagMs: 100, forMs: 0 });
    expect(d.observe(sample(undefined, 'incremental', 5), 0)).toBe(false);
    expect(d.observe(sample(undefined, 'incremental', 0), 1)).toBe(true);
  });
});

describe('emitter', () => {
  it('a failing sink is reported loudly with the event and the cause, never thrown, and the others still get it', async () => {
    const warnings: string[] = [];
    const got: string[] = [];
    const broken: EventSink = {
      name: 'EventBridge bus x',
      put: () => Promise.reject(new Error('AccessDenied')),
    };
    const ok: EventSink = {
      name: 'memory',
      put: async (e) => {
        got.push(e['detail-type']);
      },
    };
    const events = new TaskEvents([broken, ok], (m) => warnings.push(m));
    await expect(
      events.emit('Task Stopped', { taskId: 't1', phase: 'incremental' }),
    ).resolves.toBeUndefined();
    expect(got).toEqual(['Task Stopped']);
    expect(warnings).toEqual([
      "event 'Task Stopped' of task 't1' was NOT delivered to EventBridge bus x: AccessDenied; the sync goes on without it",
    ]);
  });

  it('the file sink appends one JSON line per event, in emit order, in EventBridge field names', async () => {
    const file = join(dir, 'order.jsonl');
    const events = new TaskEvents([new FileEventSink(file)]);
    await Promise.all([
      events.emit('Task Stopped', { taskId: 'a', phase: 'x' }),
      events.emit('Task Failed', { taskId: 'a', code: 'C', cause: 'c', fix: 'f' }),
      events.emit('Task Succeeded', { taskId: 'a', keysWritten: 3 }),
    ]);
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l['detail-type'])).toEqual(['Task Stopped', 'Task Failed', 'Task Succeeded']);
    expect(lines[0]).toMatchObject({ source: 'redis-dts', detail: { taskId: 'a', phase: 'x' } });
    expect(Number.isNaN(Date.parse(lines[0].time))).toBe(false);
  });

  it('an unwritable events file is reported, not thrown', async () => {
    const warnings: string[] = [];
    const events = new TaskEvents([new FileEventSink(join(dir, 'no', 'such', 'dir', 'e.jsonl'))], (m) =>
      warnings.push(m),
    );
    await events.emit('Task Stopped', { taskId: 'a', phase: 'x' });
    expect(warnings[0]).toMatch(/^event 'Task Stopped' of task 'a' was NOT delivered to file .*ENOENT/);
  });

  it('sinks come from the spec (events.file) and the environment (REDIS_DTS_EVENT_BUS)', () => {
    expect(taskEvents(parseTaskSpec(base), {}).enabled).toBe(false);
    expect(taskEvents(parseTaskSpec({ ...base, events: { file: 'e.jsonl' } }), {}).enabled).toBe(true);
    expect(taskEvents(parseTaskSpec(base), { REDIS_DTS_EVENT_BUS: 'redis-dts' }).enabled).toBe(true);
  });
});

describe('events in the spec and the schema', () => {
  it('defaults and refusals of events.caughtUp and events.file', () => {
    expect(parseTaskSpec(base).events).toEqual({ caughtUp: { lagMs: 1000, forMs: 10_000 } });
    expect(() => parseTaskSpec({ ...base, events: { caughtUp: { lagMs: -1 } } })).toThrow(
      /events\.caughtUp\.lagMs: expected an integer 0\.\.3600000, got -1/,
    );
    expect(() => parseTaskSpec({ ...base, events: { file: '' } })).toThrow(
      /events\.file: expected a file path/,
    );
  });

  it('durations of the flags', () => {
    expect(durationMs('60s')).toBe(60_000);
    expect(durationMs('500ms')).toBe(500);
    expect(durationMs('2m')).toBe(120_000);
    expect(durationMs('1500')).toBe(1500);
    expect(durationMs('soon')).toBe('soon');
  });

  it('the JSON Schema has one envelope per detail-type', () => {
    const schema = taskEventsJsonSchema() as {
      anyOf: { properties: { 'detail-type': { const: string } } }[];
    };
    expect(schema.anyOf.map((e) => e.properties['detail-type'].const)).toEqual(TASK_EVENT_TYPES);
    expect(TASK_EVENT_TYPES).toEqual([
      'Task Started',
      'Precheck Passed',
      'Precheck Failed',
      'Full Sync Completed',
      'Caught Up',
      'Inconsistency Found',
      'Backlog Lost',
      'Task Failed',
      'Task Stopped',
      'Task Succeeded',
      'Cut Over Refused',
      'Task Cut Over',
    ]);
  });
});

import {
  EVENT_DETAILS,
  EVENT_SOURCE,
  type TaskEventDetail,
  type TaskEventEnvelope,
  type TaskEventType,
} from './event-types.ts';

/** Where events go: a file of JSON lines, an EventBridge bus. */
export interface EventSink {
  /** For the warning when it fails: "file events.jsonl", "EventBridge bus redis-dts". */
  readonly name: string;
  put(event: TaskEventEnvelope): Promise<void>;
}

/** What a step or the data path calls; never rejects (see TaskEvents.emit). */
export interface TaskEventEmitter {
  emit<T extends TaskEventType>(type: T, detail: TaskEventDetail<T>): Promise<void>;
}

/**
 * Sends each event to every sink. An event is an operator's signal, not part of the data: a sink that
 * fails (a full disk, PutEvents denied or throttled) must not stop a sync, and must not be silent
 * either, so the failure is written loudly to stderr (the CloudWatch log on AWS) naming the event, the
 * sink and the cause, and the sync goes on. A detail that does not match its schema is a bug of ours;
 * it is reported the same way and still sent.
 */
export class TaskEvents implements TaskEventEmitter {
  private readonly sinks: readonly EventSink[];
  private readonly warn: (message: string) => void;

  constructor(sinks: readonly EventSink[], warn: (message: string) => void = stderrWarning) {
    this.sinks = sinks;
    this.warn = warn;
  }

  get enabled(): boolean {
    return this.sinks.length > 0;
  }

  async emit<T extends TaskEventType>(type: T, detail: TaskEventDetail<T>): Promise<void> {
    if (this.sinks.length === 0) return;
    const checked = EVENT_DETAILS[type].safeParse(detail);
    if (!checked.success) this.warn(`event '${type}' does not match its schema: ${checked.error.message}`);
    const event: TaskEventEnvelope<T> = {
      time: new Date().toISOString(),
      source: EVENT_SOURCE,
      'detail-type': type,
      detail,
    };
    await Promise.all(
      this.sinks.map((sink) =>
        sink.put(event as TaskEventEnvelope).catch((e: unknown) => {
          this.warn(
            `event '${type}' of task '${detail.taskId}' was NOT delivered to ${sink.name}: ` +
              `${(e as Error)?.message ?? String(e)}; the sync goes on without it`,
          );
        }),
      ),
    );
  }
}

/** Emits nothing: steps called without a spec that asks for events, and tests. */
export const noEvents: TaskEventEmitter = new TaskEvents([]);

function stderrWarning(message: string): void {
  process.stderr.write(`redis-dts: WARNING: ${message}\n`);
}

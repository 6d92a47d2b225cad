import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { EventSink } from './emitter.ts';
import type { TaskEventEnvelope } from './event-types.ts';

/** The environment variable naming the bus (the stack sets it on every worker). */
export const EVENT_BUS_ENV = 'REDIS_DTS_EVENT_BUS';

/**
 * PutEvents to the stack's bus. PutEvents answers 200 with per-entry failures (throttling, an internal
 * error): those are raised too, so the emitter reports them instead of losing the event quietly.
 */
export class EventBridgeSink implements EventSink {
  readonly name: string;
  private readonly bus: string;
  private readonly client: EventBridgeClient;

  constructor(bus: string, client: EventBridgeClient = new EventBridgeClient({})) {
    this.bus = bus;
    this.client = client;
    this.name = `EventBridge bus ${bus}`;
  }

  async put(event: TaskEventEnvelope): Promise<void> {
    const out = await this.client.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: this.bus,
            Source: event.source,
            DetailType: event['detail-type'],
            Detail: JSON.stringify(event.detail),
            Time: new Date(event.time),
          },
        ],
      }),
    );
    const failed = out.Entries?.find((e) => e.ErrorCode);
    if ((out.FailedEntryCount ?? 0) > 0 || failed) {
      throw new Error(
        `PutEvents refused the entry: ${failed?.ErrorCode ?? 'unknown'} ${failed?.ErrorMessage ?? ''}`,
      );
    }
  }
}

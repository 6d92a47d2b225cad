import { appendFile } from 'node:fs/promises';
import type { EventSink } from './emitter.ts';
import type { TaskEventEnvelope } from './event-types.ts';

/**
 * --events-file: one JSON line per event, appended (O_APPEND: several tasks may share a file, and a
 * line written in one call is never interleaved with another's). Writes are chained, so the lines are
 * in the order the events were emitted.
 */
export class FileEventSink implements EventSink {
  readonly name: string;
  private readonly path: string;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
    this.name = `file ${path}`;
  }

  put(event: TaskEventEnvelope): Promise<void> {
    const write = this.tail.then(() => appendFile(this.path, `${JSON.stringify(event)}\n`));
    this.tail = write.catch(() => undefined);
    return write;
  }
}

import type { LagMeter } from './lag-meter.ts';
import type { Applier, ApplyCommand, MarkerPosition } from './marker-applier.ts';

interface Pending {
  done: Promise<void>;
}

/**
 * The apply loop's output side: the batch being built, and the batches sent but not acknowledged yet.
 * A batch with a position moves the marker when the destination holds it (and only then counts as
 * applied for the lag); the first failure is kept and ends the sync at the next look.
 */
export class ApplyBatcher {
  private commands: ApplyCommand[] = [];
  private bytes = 0;
  /** Commands of the stream in the batch (not the re-copies'): what the lag meter counts as applied. */
  private streamCommands = 0;
  private heartbeats: number[] = [];
  private readonly pending: Pending[] = [];
  private flushedAt = -1;
  fatal: Error | undefined;
  /** The offset of the last batch the destination acknowledged. */
  appliedOffset: number;

  private readonly applier: Applier;
  private readonly lag: LagMeter;

  constructor(applier: Applier, lag: LagMeter, appliedOffset: number) {
    this.applier = applier;
    this.lag = lag;
    this.appliedOffset = appliedOffset;
  }

  /** A resume from the destination's marker: it already holds everything up to the marker. */
  resumeAt(offset: number): void {
    this.appliedOffset = offset;
    this.flushedAt = offset;
  }

  /** `fromStream`: a command of the stream (counted as applied), not one a re-copy wrote. */
  add(c: ApplyCommand, fromStream: boolean): void {
    this.commands.push(c);
    if (fromStream) this.streamCommands++;
    for (const a of c.argv) this.bytes += a.length + 16;
  }

  heartbeat(ms: number): void {
    this.heartbeats.push(ms);
  }

  get isEmpty(): boolean {
    return this.commands.length === 0;
  }

  get unacknowledged(): number {
    return this.pending.length;
  }

  isFull(maxBytes: number, maxCommands: number): boolean {
    return this.bytes >= maxBytes || this.streamCommands >= maxCommands;
  }

  /** Nothing to send: no command, and the stream has not moved since the last batch. */
  isIdleAt(offset: number): boolean {
    return this.commands.length === 0 && offset === this.flushedAt;
  }

  /** Sends the batch with the marker at `position` (a whole command, never inside a source transaction). */
  flush(position: MarkerPosition): void {
    void this.send(this.commands, position, this.streamCommands, this.heartbeats);
    this.flushedAt = position.offset;
    this.commands = [];
    this.bytes = 0;
    this.streamCommands = 0;
    this.heartbeats = [];
  }

  /** Commands sent before any marker (the catch-up's re-copies): they leave the marker alone. */
  sendUnmarked(commands: ApplyCommand[]): void {
    void this.send(commands, undefined, 0, []);
  }

  async throttle(maxPending: number): Promise<void> {
    while (this.pending.length >= maxPending) await this.pending[0]!.done;
  }

  async drain(): Promise<void> {
    while (this.pending.length > 0) await this.pending[0]!.done;
    if (this.fatal) throw this.fatal;
  }

  private send(
    commands: ApplyCommand[],
    position: MarkerPosition | undefined,
    streamCommands: number,
    heartbeats: number[],
  ): Promise<void> {
    const entry: Pending = { done: Promise.resolve() };
    entry.done = this.applier.apply(commands, position).then(
      () => {
        this.pending.splice(this.pending.indexOf(entry), 1);
        if (!position) return;
        this.appliedOffset = position.offset;
        this.lag.observeApplied(position.offset, streamCommands);
        const now = Date.now();
        for (const ms of heartbeats) this.lag.observeHeartbeat(ms, now);
      },
      (e: Error) => {
        this.pending.splice(this.pending.indexOf(entry), 1);
        this.fatal ??= e;
      },
    );
    this.pending.push(entry);
    return entry.done;
  }
}

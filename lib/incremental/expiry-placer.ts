import { carriesRelativeExpiry, toAbsoluteExpiry } from '../commands/absolute-expiry.ts';

/**
 * How much later than the source ran it a command may reach us and still have its relative expiry
 * placed by its arrival time. A command that may be later than that has its keys re-copied instead
 * (read with PTTL and TIME in one transaction: exact to the millisecond).
 */
export const PLACEMENT_BOUND_MS = 10;

/** What to do with a command of the stream of a source that propagates relative expiries. */
export type Placement =
  /** No relative expiry: replay it as it is. */
  | undefined
  /** Replay these commands instead (absolute expiries). */
  | Buffer[][]
  /** The source's clock at the command is not known closely enough: re-copy its keys. */
  | 'recopy';

/**
 * Places the relative expiries of a pre-7.0 source (absolute-expiry.ts) at the source's clock when it
 * ran the command: our clock when the command arrived plus the source's offset to it (measured by the
 * heartbeat writer's TIME at every beat).
 *
 * Arrival is only as good as the stream is live, so that estimate is used only while the stream is
 * known to be live: our heartbeat (SET of the source's TIME) came back within PLACEMENT_BOUND_MS of
 * being written, and since then the link has neither been reconnected nor paused (a resume, a replay
 * of the backlog, or a full queue all deliver commands late). A command the source had already run
 * more than the bound before it arrived, as a poll of the source's offset shows, is late too. Anything
 * not shown live is re-copied, so a late command costs a read of the source, never a wrong expiry.
 */
export class ExpiryPlacer {
  private readonly clockOffset: () => number | undefined;
  private live = false;
  private polled: { offset: number; at: number } | undefined;

  /** `clockOffset`: the source's clock minus ours in ms, undefined while unknown. */
  constructor(clockOffset: () => number | undefined) {
    this.clockOffset = clockOffset;
  }

  /** Our heartbeat came back through the stream: `sourceMs` is the source time it carries. */
  observeHeartbeat(sourceMs: number, arrivedAt: number): void {
    const offset = this.clockOffset();
    this.live = offset !== undefined && arrivedAt + offset - sourceMs <= PLACEMENT_BOUND_MS;
  }

  /** The source's replication offset as read at `at` (its reply's arrival). */
  observeSourceOffset(offset: number, at: number): void {
    this.polled = { offset, at };
  }

  /** The link was reconnected or paused: commands may now arrive late, until a heartbeat shows otherwise. */
  notLive(): void {
    this.live = false;
  }

  /** What replays `argv`, which ended at stream offset `end` and arrived at `arrivedAt`. */
  place(argv: readonly Buffer[], end: number, arrivedAt: number): Placement {
    if (!carriesRelativeExpiry(argv)) return undefined;
    const sourceMs = this.sourceTimeOf(end, arrivedAt);
    if (sourceMs === undefined) return 'recopy';
    return toAbsoluteExpiry(argv, sourceMs) ?? 'recopy';
  }

  private sourceTimeOf(end: number, arrivedAt: number): number | undefined {
    const offset = this.clockOffset();
    if (!this.live || offset === undefined) return undefined;
    const p = this.polled;
    // The source had run it by the time it answered that poll.
    if (p && end <= p.offset && arrivedAt - p.at > PLACEMENT_BOUND_MS) return undefined;
    return Math.round(arrivedAt + offset);
  }
}

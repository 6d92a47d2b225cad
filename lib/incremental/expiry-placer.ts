import { carriesRelativeExpiry, toAbsoluteExpiry } from '../commands/absolute-expiry.ts';
import { type FilterContext, filterCommand } from '../commands/command-filter.ts';
import type { ClockEstimate } from './clock-offset.ts';

/**
 * How much later than the source ran it a command may reach us and still have its relative expiry
 * placed by its arrival time. A command that may be later than that has its keys re-copied instead
 * (read with PTTL and TIME in one transaction: exact to the millisecond).
 */
export const PLACEMENT_BOUND_MS = 5;

/** How often the event loop is checked for stalls (a GC pause, the process descheduled). */
const LOOP_TICK_MS = 5;
/** Stalls remembered: more than a queue of commands waits across. */
const MAX_STALLS = 32;

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
 * heartbeat writer's TIME at every beat, ClockOffset; unused when not known within half the bound).
 *
 * Arrival is only as good as the stream is live, so that estimate is used only while the stream is
 * known to be live: our heartbeat (SET of the source's TIME) came back within PLACEMENT_BOUND_MS of
 * being written, and since then the link has neither been reconnected nor paused (a resume, a replay
 * of the backlog, or a full queue all deliver commands late). A command the source had already run
 * more than the bound before it arrived, as a poll of the source's offset shows, is late too; and so is
 * one read just after our event loop stalled (a GC pause, the process descheduled), when the socket
 * held data that had waited. Anything not shown live is re-copied, so a late command costs a read of
 * the source, never a wrong expiry.
 */
export class ExpiryPlacer {
  private readonly clockOffset: () => ClockEstimate | undefined;
  private live = false;
  private polled: { offset: number; at: number } | undefined;
  private lastTick = Date.now();
  /**
   * The latest stalls of the event loop, each from the tick before it to the one that ended it: a
   * command may wait in our queue across several before it is placed.
   */
  private readonly stalls: { from: number; to: number }[] = [];
  private readonly ticker: NodeJS.Timeout;

  /** `clockOffset`: the source's clock minus ours, undefined while unknown. */
  constructor(clockOffset: () => ClockEstimate | undefined) {
    this.clockOffset = clockOffset;
    this.ticker = setInterval(() => {
      const now = Date.now();
      if (now - this.lastTick > LOOP_TICK_MS + PLACEMENT_BOUND_MS)
        this.stalls.push({ from: this.lastTick, to: now });
      if (this.stalls.length > MAX_STALLS) this.stalls.shift();
      this.lastTick = now;
    }, LOOP_TICK_MS);
    this.ticker.unref();
  }

  close(): void {
    clearInterval(this.ticker);
  }

  /** Our heartbeat came back through the stream: `sourceMs` is the source time it carries. */
  observeHeartbeat(sourceMs: number, arrivedAt: number): void {
    const offset = this.offsetMs();
    this.live = offset !== undefined && arrivedAt + offset - sourceMs <= PLACEMENT_BOUND_MS;
  }

  /** The clock offset, when it is known to within half the bound. */
  private offsetMs(): number | undefined {
    const clock = this.clockOffset();
    return clock && clock.errorMs <= PLACEMENT_BOUND_MS / 2 ? clock.offsetMs : undefined;
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
    const offset = this.offsetMs();
    if (!this.live || offset === undefined) return undefined;
    // Read during or right after a stall of our event loop: it may have waited in the socket. The stall
    // is either still unseen by the ticker (no tick for too long before the read) or recorded by it.
    if (arrivedAt - this.lastTick > LOOP_TICK_MS + PLACEMENT_BOUND_MS) return undefined;
    for (const stall of this.stalls) {
      if (arrivedAt >= stall.from && arrivedAt - stall.to <= PLACEMENT_BOUND_MS) return undefined;
    }
    const p = this.polled;
    // The source had run it by the time it answered that poll.
    if (p && end <= p.offset && arrivedAt - p.at > PLACEMENT_BOUND_MS) return undefined;
    return Math.round(arrivedAt + offset);
  }
}

/** How many queued commands a re-copy looks ahead into, and how many keys it takes along at most. */
export const LOOK_AHEAD_COMMANDS = 2000;
const LOOK_AHEAD_KEYS = 500;

/**
 * Keys of the relative expiries queued right behind one that is re-copied, in the same db: copying them
 * in the same read costs one source round trip instead of one each (a stream that is not live, as at
 * saturation or on a resume, is mostly such commands). Copying a key earlier than its command is what
 * any re-copy does: its state is read at a stamp past the command, which is then skipped. The scan
 * stops at anything that changes the db or spans more than keys (SELECT, MULTI/EXEC, FLUSHDB…).
 */
export function relativeExpiryKeysAhead(
  queued: readonly { argv: Buffer[] }[],
  db: number,
  filter: FilterContext,
): Buffer[] {
  const keys: Buffer[] = [];
  for (const item of queued) {
    if (keys.length >= LOOK_AHEAD_KEYS) break;
    if (!carriesRelativeExpiry(item.argv)) {
      const d = filterCommand({ db, argv: item.argv }, filter);
      if (d.action === 'apply' || d.action === 'skip' || d.action === 'recopy') continue;
      break;
    }
    const d = filterCommand({ db, argv: item.argv }, filter);
    if (d.action === 'apply' && !d.serverWide) keys.push(...d.keys);
  }
  return keys;
}

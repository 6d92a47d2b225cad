import { setTimeout as sleep } from 'node:timers/promises';
import { isInternalKey, type KeyPredicate } from '../commands/key-filter.ts';
import { HeartbeatWriter, heartbeatKey } from '../incremental/heartbeat.ts';
import { keySlot } from '../redis/cluster-slot.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import { DirtyKeys } from './dirty-keys.ts';
import { KeyspaceCommandWatch } from './keyspace-command-watch.ts';
import { type KeyspaceEvent, KeyspaceSubscriber } from './keyspace-subscriber.ts';

/** One source node whose keyspace events are watched: a standalone server or one cluster master. */
export interface WatchedShard {
  shardId: string;
  endpoint: RedisEndpoint;
  /** Cluster: a hash tag on one of its slots (its heartbeat key carries it). */
  tag?: string;
  /** Cluster: the slots it serves, to route a repair's differing keys to the right shard. */
  ownsSlot?: (slot: number) => boolean;
  /** Cluster: where the shard's master is now, after a failover. */
  resolve?: () => Promise<RedisEndpoint>;
}

/** A window in which events may have been lost, and why. */
export interface EventGap {
  at: string;
  shardId: string;
  cause: string;
}

export interface KeyspaceWatchOptions {
  taskId: string;
  shards: readonly WatchedShard[];
  /** Selected source dbs (spec.dbs); absent: every db, narrowed later by selectDbs(). */
  dbs?: readonly number[];
  keep: KeyPredicate;
  /** Heartbeat probes: a key written every intervalMs whose event must come back (absent: none). */
  heartbeat?: { prefix: string; intervalMs: number; db: number };
  maxDirtyKeys?: number;
  log: (message: string) => void;
}

/** Heartbeat probes written in a row, with no event at all coming back, before it counts as a gap. */
const MISSED_PROBES = 3;
const RECONNECT_PAUSE_MS = [100, 250, 500, 1000];

/** One shard's live state: its subscription, probe writer, dirty keys. */
export class ShardWatch {
  readonly shard: WatchedShard;
  readonly dirty: DirtyKeys;
  endpoint: RedisEndpoint;
  subscriber: KeyspaceSubscriber | undefined;
  readonly heartbeat: HeartbeatWriter | undefined;
  readonly heartbeatKey: Buffer | undefined;
  /** Heartbeat writes done when its event was last seen. */
  beatsAtLastProbe = 0;
  probeSilent = false;
  /** Date.now() of the last event of any key: while events flow, a late probe is queued, not lost. */
  lastAnyEventAt = Date.now();
  /** Date.now() of the last event of a key other than the heartbeat. */
  lastEventAt = 0;
  commands: KeyspaceCommandWatch | undefined;

  constructor(shard: WatchedShard, o: KeyspaceWatchOptions, log: (m: string) => void) {
    this.shard = shard;
    this.endpoint = shard.endpoint;
    this.dirty = new DirtyKeys(o.maxDirtyKeys);
    if (o.heartbeat) {
      // Without its writes there are no probes, so silent gaps go unseen: say so.
      this.heartbeat = new HeartbeatWriter({
        onError: (e) =>
          log(`shard ${shard.shardId}: ${e.message} (silent gaps in the events cannot be seen meanwhile)`),
      });
      this.heartbeatKey = heartbeatKey(o.heartbeat.prefix, o.taskId, shard.tag);
    }
  }
}

/**
 * The notification reader's input (ARCHITECTURE.md, "notification reader"): a subscription to keyspace
 * events on every source node, each event marking its key dirty, and every way events can be lost turned
 * into a gap that asks for a repair round:
 *
 * - the subscription connection ends (a client-output-buffer kill, CLIENT KILL, a failover, the network):
 *   it is opened again at once, and everything before the new subscription is suspect;
 * - heartbeat probes (the heartbeat key, written every interval) stop coming back as events, though
 *   their writes succeed (notify-keyspace-events changed, a proxy that drops pushes);
 * - the dirty set is full (marks were dropped);
 * - FLUSHDB, FLUSHALL or SWAPDB ran (they emit no per-key events; seen in INFO commandstats).
 *
 * It is started before the full sync (CaptureStart, where one process runs the whole task) so the
 * writes made while copying are marked; a watch started later begins with a repair round instead.
 */
export class KeyspaceWatch {
  readonly startedAt = new Date().toISOString();
  readonly shards: ShardWatch[];
  private readonly o: KeyspaceWatchOptions;
  private selected: Set<number> | undefined;
  private closed = false;
  private readonly gapLog: EventGap[] = [];
  private gapCount = 0;
  private repairReasons: string[] = [];
  private probeTimer: NodeJS.Timeout | undefined;
  eventsReceived = 0;
  reconnects = 0;
  /** Subscribed before a full sync that had not started yet: every write since the copy began is marked. */
  coversFullSync = false;

  /** Where its messages go: CaptureStart's log first, the Incremental state's once it takes over. */
  log: (message: string) => void;

  private constructor(o: KeyspaceWatchOptions) {
    this.o = o;
    this.log = o.log;
    this.shards = o.shards.map((s) => new ShardWatch(s, o, (m) => this.log(m)));
    if (o.dbs) this.selected = new Set(o.dbs);
  }

  /** Subscribes on every shard (resolving once each subscription is confirmed), then starts the probes. */
  static async start(o: KeyspaceWatchOptions): Promise<KeyspaceWatch> {
    const watch = new KeyspaceWatch(o);
    try {
      await Promise.all(watch.shards.map((s) => watch.subscribe(s)));
      for (const s of watch.shards) {
        s.commands = new KeyspaceCommandWatch(s.endpoint, {
          onChange: (what) => watch.gap(s, `${what} ran on the source (it sends no per-key events)`),
          log: (m) => watch.log(m),
        });
        await s.commands.start();
        if (o.heartbeat && s.heartbeat) {
          await s.heartbeat.start(s.endpoint, {
            taskId: o.taskId,
            prefix: o.heartbeat.prefix,
            intervalMs: o.heartbeat.intervalMs,
            db: o.heartbeat.db,
            ...(s.shard.tag !== undefined ? { shardTag: s.shard.tag } : {}),
          });
        }
      }
      if (o.heartbeat) {
        const intervalMs = o.heartbeat.intervalMs;
        watch.probeTimer = setInterval(() => watch.checkProbes(intervalMs), intervalMs);
        watch.probeTimer.unref();
      }
      return watch;
    } catch (e) {
      await watch.close();
      throw e;
    }
  }

  /** The dbs the full sync copied: marks in other dbs are dropped. */
  selectDbs(dbs: readonly number[]): void {
    this.selected = new Set(dbs);
  }

  isSelected(db: number): boolean {
    return this.selected === undefined || this.selected.has(db);
  }

  /** Asks for a repair round without a lost event behind it (a restart, a watch opened late). */
  requestRepair(reason: string): void {
    this.repairReasons.push(reason);
  }

  /** The reasons for the repair round due, cleared; empty when none is due. */
  takeRepairReasons(): string[] {
    for (const s of this.shards) {
      const dropped = s.dirty.takeDropped();
      if (dropped > 0) this.gap(s, `the dirty set was full: ${dropped} mark(s) dropped`);
    }
    const reasons = this.repairReasons;
    this.repairReasons = [];
    return reasons;
  }

  get gaps(): { count: number; recent: readonly EventGap[] } {
    return { count: this.gapCount, recent: this.gapLog };
  }

  get dirtyKeys(): number {
    return this.shards.reduce((n, s) => n + s.dirty.size, 0);
  }

  /** The latest event of a key (not a probe) on any shard, Date.now() ms; 0 if none yet. */
  get lastEventAt(): number {
    return Math.max(...this.shards.map((s) => s.lastEventAt));
  }

  /** The shard serving a key (a repair round's differing keys are marked there). */
  shardOfKey(key: Buffer): ShardWatch {
    if (this.shards.length === 1) return this.shards[0]!;
    const slot = keySlot(key);
    return this.shards.find((w) => w.shard.ownsSlot?.(slot) ?? true) ?? this.shards[0]!;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    for (const s of this.shards) {
      s.subscriber?.close();
      s.commands?.stop();
      // A SWAPDB or MOVE may have carried the heartbeat key into another selected db.
      for (const db of this.selected ?? []) await s.heartbeat?.removeFrom(db);
      await s.heartbeat?.stop();
    }
  }

  private onEvent(s: ShardWatch, e: KeyspaceEvent): void {
    this.eventsReceived++;
    s.lastAnyEventAt = Date.now();
    if (s.heartbeatKey && e.key.equals(s.heartbeatKey)) {
      s.beatsAtLastProbe = s.heartbeat?.beats ?? 0;
      s.probeSilent = false;
      return;
    }
    if (isInternalKey(e.key) || !this.o.keep(e.key)) return;
    if (this.selected && !this.selected.has(e.db)) return;
    s.lastEventAt = Date.now();
    s.dirty.mark(e.db, e.key);
  }

  private async subscribe(s: ShardWatch): Promise<void> {
    s.subscriber = await KeyspaceSubscriber.open(s.endpoint, {
      ...(this.o.dbs ? { dbs: this.o.dbs } : {}),
      onEvent: (e) => this.onEvent(s, e),
      onLost: (cause) => void this.resubscribe(s, cause),
    });
  }

  /** A lost subscription: a gap from now until the new one is confirmed; the repair round follows it. */
  private async resubscribe(s: ShardWatch, cause: Error): Promise<void> {
    if (this.closed) return;
    this.log(
      `shard ${s.shard.shardId}: the keyspace subscription on ${describeEndpoint(s.endpoint)} was lost ` +
        `(${cause.message}); subscribing again, then repairing`,
    );
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        if (s.shard.resolve) s.endpoint = await s.shard.resolve().catch(() => s.endpoint);
        await this.subscribe(s);
        if (this.closed) {
          s.subscriber?.close();
          return;
        }
        this.reconnects++;
        // Recorded after the new subscription holds: the repair then sees every write it could have missed.
        this.gap(s, `the keyspace subscription was lost (${cause.message})`);
        return;
      } catch {
        await sleep(RECONNECT_PAUSE_MS[Math.min(attempt, RECONNECT_PAUSE_MS.length - 1)]!);
      }
    }
  }

  private checkProbes(intervalMs: number): void {
    for (const s of this.shards) {
      const beats = s.heartbeat?.beats ?? 0;
      // Pub/sub delivers in order and drops nothing short of closing the connection: a probe behind a
      // flood of events that are still arriving is late, not lost.
      const silentMs = Date.now() - s.lastAnyEventAt;
      if (
        s.probeSilent ||
        beats - s.beatsAtLastProbe < MISSED_PROBES ||
        silentMs < MISSED_PROBES * intervalMs
      ) {
        continue;
      }
      s.probeSilent = true;
      this.gap(
        s,
        `${beats - s.beatsAtLastProbe} heartbeat probes were written but none came back as a keyspace event ` +
          '(is notify-keyspace-events still KA?)',
      );
    }
  }

  private gap(s: ShardWatch, cause: string): void {
    this.gapCount++;
    this.gapLog.push({ at: new Date().toISOString(), shardId: s.shard.shardId, cause });
    if (this.gapLog.length > 10) this.gapLog.shift();
    this.repairReasons.push(`shard ${s.shard.shardId}: ${cause}`);
    this.log(`gap in keyspace events on shard ${s.shard.shardId}: ${cause}; a repair round follows`);
  }
}

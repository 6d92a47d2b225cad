import { DtsError } from '../errors.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import type { HeldLink } from '../replication/held-link.ts';
import { PsyncClient } from '../replication/psync-client.ts';

/** One command of the replication stream (views of the socket's buffers). */
export interface StreamItem {
  argv: Buffer[];
  /** Offset of the command's last byte (see CommandStreamParser). */
  end: number;
  /** The replication id the offset belongs to (changes when the source fails over). */
  replid: string;
  /** Estimated memory of the item, for the queue's bound. */
  bytes: number;
  /** Date.now() when the command was read from the socket (with stampArrival; else 0). */
  at: number;
}

export interface StreamFeedOptions {
  source: RedisEndpoint;
  /** Continue this history after `offset` (the last offset already taken care of). */
  replid: string;
  offset: number;
  /**
   * Pause reading above this many queued bytes (default 1 MB, JS object overhead included; a few
   * thousand commands, so they die young in the GC); resume below a quarter of it.
   */
  maxQueuedBytes?: number;
  /** Reconnect attempts after a dropped link before giving up (default 10, 1 s apart). */
  reconnectAttempts?: number;
  connectTimeoutMs?: number;
  readTimeoutMs?: number;
  /** Stamp each item with its arrival time (a clock read per command: only when someone needs it). */
  stampArrival?: boolean;
  /**
   * Told when reading pauses (too much queued): what the master sends meanwhile waits in its buffers,
   * so commands then arrive later than the source ran them.
   */
  onPause?: () => void;
  /** Told of each reconnect (progress output). */
  onReconnect?: (attempt: number, cause: Error) => void;
  /** A cluster shard: where its master is now, asked before each reconnect (a failover moves it). */
  resolveSource?: () => Promise<RedisEndpoint>;
  /**
   * A link already at `replid`/`offset` (the one the RDB full sync read the snapshot on): the stream
   * continues on it instead of a new PSYNC. Reconnects after a drop use PSYNC as usual.
   */
  adopt?: HeldLink;
}

/** Rough heap bytes of a queued item and of each argument's Buffer view (measured orders, not exact). */
const ITEM_OVERHEAD = 160;
const ARG_OVERHEAD = 96;

/**
 * The replication stream as a queue the apply loop pulls from at its own pace: `PSYNC <replid> <offset+1>`,
 * reading paused while too much is queued (the master then
 * buffers for us), and transparent reconnects from the last queued offset after a dropped link, so a
 * network blip costs nothing but time. `+FULLRESYNC` on any connect means the backlog no longer holds the
 * position: that fails the feed with BACKLOG_LOST, never a silent restart.
 */
export class StreamFeed {
  private readonly o: StreamFeedOptions;
  private readonly maxQueuedBytes: number;
  private readonly queue: StreamItem[] = [];
  private head = 0;
  private queuedBytes = 0;
  private client: PsyncClient | undefined;
  private replid: string;
  private lastQueued: number;
  private failure: Error | undefined;
  private closed = false;
  private waiter: (() => void) | undefined;
  private reconnecting: Promise<void> | undefined;
  private source: RedisEndpoint;
  reconnects = 0;

  private constructor(o: StreamFeedOptions) {
    this.o = o;
    this.source = o.source;
    this.maxQueuedBytes = o.maxQueuedBytes ?? 1024 * 1024;
    this.replid = o.replid;
    this.lastQueued = o.offset;
  }

  static async open(o: StreamFeedOptions): Promise<StreamFeed> {
    const feed = new StreamFeed(o);
    const held = o.adopt;
    if (held?.available && held.replid === o.replid && held.offset === o.offset) {
      feed.client = held.take({
        onCommand: (argv, end) => feed.onCommand(argv, end),
        onClose: (err) => feed.onClose(err),
      });
    } else {
      await held?.release();
      await feed.connect();
    }
    return feed;
  }

  /** Up to `max` queued commands after the next one to take, without taking them. */
  peek(max: number): readonly StreamItem[] {
    return this.queue.slice(this.head, this.head + max);
  }

  /** The next command if one is queued; throws the feed's failure once the queue is drained. */
  take(): StreamItem | undefined {
    if (this.head < this.queue.length) {
      const item = this.queue[this.head]!;
      this.queue[this.head++] = undefined as never;
      this.queuedBytes -= item.bytes;
      if (this.head > 4096 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      if (this.client?.paused && this.queuedBytes < this.maxQueuedBytes / 4) this.client.resume();
      return item;
    }
    if (this.failure) throw this.failure;
    return undefined;
  }

  /** Resolves when a command is queued, the feed failed, or `ms` passed. */
  wait(ms: number): Promise<void> {
    if (this.head < this.queue.length || this.failure) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        if (self.waiter === done) self.waiter = undefined;
        resolve();
      }
      this.waiter = done;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.close();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private async connect(): Promise<void> {
    const client = await PsyncClient.connect(this.source, {
      replid: this.replid,
      offset: this.lastQueued,
      rdb: 'discard',
      connectTimeoutMs: this.o.connectTimeoutMs,
      readTimeoutMs: this.o.readTimeoutMs,
      onCommand: (argv, end) => this.onCommand(argv, end),
      onClose: (err) => this.onClose(err),
    });
    if (client.result.mode === 'fullresync') {
      await client.close();
      throw backlogLost(this.source, this.replid, this.lastQueued);
    }
    this.replid = client.result.replid;
    this.client = client;
  }

  private onCommand(argv: Buffer[], end: number): void {
    let bytes = 0;
    for (const a of argv) bytes += a.length;
    // The argv Buffers are views of the socket's chunks, kept as they are: the queue is short (a few
    // thousand commands), so it pins a bounded number of chunks, and a copy per command would double the
    // garbage the GC has to collect at 100k+ commands per second.
    const weight = bytes + ITEM_OVERHEAD + ARG_OVERHEAD * argv.length;
    this.queue.push({
      argv,
      end,
      replid: this.replid,
      bytes: weight,
      at: this.o.stampArrival ? Date.now() : 0,
    });
    this.queuedBytes += weight;
    this.lastQueued = end;
    if (this.queuedBytes > this.maxQueuedBytes && this.client && !this.client.paused) {
      this.client.pause();
      this.o.onPause?.();
    }
    this.wake();
  }

  private onClose(err: Error | undefined): void {
    this.client = undefined;
    if (this.closed || !err) return;
    this.reconnecting ??= this.reconnect(err).finally(() => {
      this.reconnecting = undefined;
    });
  }

  private async reconnect(cause: Error): Promise<void> {
    const attempts = this.o.reconnectAttempts ?? 10;
    let last: Error = cause;
    for (let attempt = 1; attempt <= attempts && !this.closed; attempt++) {
      this.o.onReconnect?.(attempt, last);
      await new Promise((r) => setTimeout(r, attempt === 1 ? 100 : 1000));
      try {
        // A promoted replica continues the old master's history (PSYNC2: its replid2), so the stream
        // resumes there as it would on the same server.
        if (this.o.resolveSource) this.source = await this.o.resolveSource();
        await this.connect();
        this.reconnects++;
        return;
      } catch (e) {
        last = e as Error;
        if (e instanceof DtsError && e.code === 'BACKLOG_LOST') break;
      }
    }
    this.failure = last;
    this.wake();
  }
}

export function backlogLost(source: RedisEndpoint, replid: string, offset: number): DtsError {
  return new DtsError(
    'BACKLOG_LOST',
    `${describeEndpoint(source)} no longer holds the replication stream from ${replid}:${offset + 1} in its ` +
      'backlog (it answered +FULLRESYNC): the changes since then cannot be replayed, and the destination ' +
      'stays as it was at that point',
    'raise repl-backlog-size on the source (CONFIG SET repl-backlog-size, e.g. to 10 times the writes per ' +
      'second times the longest outage), then run the task again with a fresh full sync',
  );
}

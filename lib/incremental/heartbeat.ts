import { DtsError } from '../errors.ts';
import { classifyRedisError } from '../redis/classify-error.ts';
import { tagForSlots } from '../redis/cluster-slot.ts';
import { readClusterTopology } from '../redis/cluster-topology.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import { RespError, type RespValue } from '../redis/resp.ts';
import { type ClockEstimate, ClockOffset } from './clock-offset.ts';

export interface HeartbeatStartOptions {
  taskId: string;
  /** incremental.heartbeat.prefix, e.g. 'redis-dts:heartbeat:'. */
  prefix: string;
  intervalMs: number;
  /** Cluster: one heartbeat per shard, `{tag}` pinning the key to that shard's slots. */
  shardTag?: string;
  /** Database the key is written to (default 0). */
  db?: number;
  /**
   * Expiry of the key (default max(60 s, 10 intervals)): a replicator that dies without stop() leaves
   * nothing behind on the source for long.
   */
  ttlMs?: number;
}

export interface HeartbeatWriterOptions {
  /**
   * Called once per streak of `maxConsecutiveFailures` failed writes (again only after a write succeeded).
   * Writing goes on after it: a fixed ACL or a failover back makes the heartbeat resume by itself.
   */
  onError?: (err: DtsError) => void;
  /** Default 5. */
  maxConsecutiveFailures?: number;
  connectTimeoutMs?: number;
}

/** `<prefix><taskId>`, or `<prefix><taskId>:{<shardTag>}` for one shard of a cluster. */
export function heartbeatKey(prefix: string, taskId: string, shardTag?: string): Buffer {
  return Buffer.from(shardTag === undefined ? `${prefix}${taskId}` : `${prefix}${taskId}:{${shardTag}}`);
}

/**
 * Writes the source's own clock (TIME, in ms) into the heartbeat key every intervalMs. The write keeps
 * the replication offset moving on an idle source, and when the SET comes back through the replication
 * stream, apply time − its value is the lag.
 *
 * Why TIME then SET instead of one `EVAL` doing both: EVAL needs +eval too and is restricted on some
 * managed services, and one round trip of delay is far below the lag resolution that matters. (Checked
 * on Redis 7.0: such a script with a single write replicates as a plain `SET key value`, so both ways
 * look the same in the stream.) With the expiry, the stream carries `SET key value PXAT <abs ms>`.
 *
 * Failures never throw: each counts, the connection is reopened on the next beat, and a long enough
 * streak is reported through onError.
 */
export class HeartbeatWriter {
  /** Dbs a SWAPDB moved the key into: stop() clears them as well. */
  private readonly swappedWith = new Set<number>();
  private readonly onError: ((err: DtsError) => void) | undefined;
  private readonly maxFailures: number;
  private readonly connectTimeoutMs: number | undefined;
  private source: RedisEndpoint | undefined;
  private opts: Required<Omit<HeartbeatStartOptions, 'shardTag'>> | undefined;
  private heartbeatKeyBuf: Buffer | undefined;
  private shardTag: string | undefined;
  private conn: RawConnection | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;
  private failures = 0;
  private reported = false;
  private lastFailure: DtsError | undefined;
  private written = 0;
  private lastValue: number | undefined;
  private readonly clock = new ClockOffset();

  constructor(options: HeartbeatWriterOptions = {}) {
    this.onError = options.onError;
    this.maxFailures = options.maxConsecutiveFailures ?? 5;
    this.connectTimeoutMs = options.connectTimeoutMs;
  }

  /** The heartbeat key (after start). */
  get key(): Buffer {
    if (!this.heartbeatKeyBuf) throw new Error('HeartbeatWriter: not started');
    return this.heartbeatKeyBuf;
  }

  /** The latest write's failure; undefined once a write succeeded again. */
  get lastError(): DtsError | undefined {
    return this.lastFailure;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Successful writes so far. */
  get beats(): number {
    return this.written;
  }

  /** Source time (ms) of the latest successful write. */
  get lastValueMs(): number | undefined {
    return this.lastValue;
  }

  /** The source's clock minus ours, from the beats' TIME (see ClockOffset); undefined before the first. */
  get clockOffset(): ClockEstimate | undefined {
    return this.clock.estimate;
  }

  /** Writes the first heartbeat (its failure only counts, as any other), then one every intervalMs. */
  async start(source: RedisEndpoint, o: HeartbeatStartOptions): Promise<void> {
    if (this.opts) throw new Error('HeartbeatWriter: already started');
    if (!Number.isFinite(o.intervalMs) || o.intervalMs <= 0) {
      throw new TypeError(`HeartbeatWriter: intervalMs must be positive, got ${o.intervalMs}`);
    }
    this.source = source;
    this.opts = {
      taskId: o.taskId,
      prefix: o.prefix,
      intervalMs: o.intervalMs,
      db: o.db ?? 0,
      ttlMs: o.ttlMs ?? Math.max(60_000, 10 * o.intervalMs),
    };
    this.shardTag = o.shardTag;
    this.heartbeatKeyBuf = heartbeatKey(o.prefix, o.taskId, o.shardTag);
    await this.tick();
  }

  /** Stops writing and deletes the key (best effort: a failure only lands in lastError). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
    if (!this.heartbeatKeyBuf || !this.source) return;
    try {
      const conn = await this.connection();
      // A SWAPDB racing a beat can leave a copy in a db it swapped with: those are cleared too.
      const strays = [...this.swappedWith].flatMap((db) => [
        ['SELECT', db],
        ['DEL', this.heartbeatKeyBuf!],
      ]);
      await conn.pipeline([['DEL', this.heartbeatKeyBuf], ...strays, ['SELECT', this.opts!.db]]);
    } catch (e) {
      this.lastFailure = this.classify(e);
    }
    const conn = this.conn;
    this.conn = undefined;
    if (conn) await conn.close().catch(() => conn.destroy());
  }

  /**
   * Deletes the key from another db of the source: a SWAPDB of the heartbeat's db carried the key there,
   * where nothing would remove it before it expires. Best effort, as every heartbeat write.
   */
  async removeFrom(db: number): Promise<void> {
    if (!this.heartbeatKeyBuf || !this.source || this.stopped || db === this.opts!.db) return;
    this.swappedWith.add(db);
    try {
      const conn = await this.connection();
      // One write: no beat can run between the SELECTs.
      await conn.pipeline([
        ['SELECT', db],
        ['DEL', this.heartbeatKeyBuf],
        ['SELECT', this.opts!.db],
      ]);
    } catch (e) {
      this.lastFailure = this.classify(e);
    }
  }

  private async tick(): Promise<void> {
    const started = Date.now();
    this.inFlight = this.beat();
    await this.inFlight;
    this.inFlight = undefined;
    if (this.stopped) return;
    const wait = Math.max(0, this.opts!.intervalMs - (Date.now() - started));
    this.timer = setTimeout(() => void this.tick(), wait);
    // The replicator's own work keeps the process alive; a heartbeat alone must not.
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    try {
      const conn = await this.connection();
      const before = Date.now();
      const us = timeToUs(await conn.call(['TIME']));
      const after = Date.now();
      const ms = Math.floor(us / 1000);
      this.clock.add(us, before, after);
      await conn.call(['SET', this.heartbeatKeyBuf!, String(ms), 'PX', this.opts!.ttlMs]);
      this.written++;
      this.lastValue = ms;
      this.failures = 0;
      this.reported = false;
      this.lastFailure = undefined;
    } catch (e) {
      if (await this.retagAfterMove(e)) return;
      this.failures++;
      this.lastFailure = this.classify(e);
      if (this.conn?.failed) {
        this.conn.destroy();
        this.conn = undefined;
      }
      if (this.failures >= this.maxFailures && !this.reported) {
        this.reported = true;
        const f = this.lastFailure;
        this.onError?.(
          new DtsError(f.code, `${this.failures} heartbeat writes in a row failed: ${f.message}`, f.fix, {
            cause: f,
          }),
        );
      }
    }
  }

  /**
   * The slot of the key's tag was resharded away from this master (MOVED/ASK): a tag on a slot it still
   * serves, read from its own slot map, takes over from the next beat. True when the tag changed.
   */
  private async retagAfterMove(e: unknown): Promise<boolean> {
    if (this.shardTag === undefined || !(e instanceof RespError)) return false;
    if (e.prefix !== 'MOVED' && e.prefix !== 'ASK') return false;
    try {
      const conn = await this.connection();
      const id = String(await conn.call(['CLUSTER', 'MYID']));
      const topology = await readClusterTopology(this.source!);
      const index = topology.masters.findIndex((m) => m.id === id);
      if (index < 0 || !topology.slotOwner.includes(index)) return false;
      const tag = tagForSlots((slot) => topology.slotOwner[slot] === index);
      if (tag === this.shardTag) return false;
      this.shardTag = tag;
      this.heartbeatKeyBuf = heartbeatKey(this.opts!.prefix, this.opts!.taskId, tag);
      return true;
    } catch {
      return false;
    }
  }

  private async connection(): Promise<RawConnection> {
    if (this.conn && !this.conn.failed) return this.conn;
    this.conn?.destroy();
    this.conn = undefined;
    const conn = await RawConnection.open(this.source!, {
      db: this.opts!.db,
      clientName: 'redis-dts-heartbeat',
      ...(this.connectTimeoutMs !== undefined ? { connectTimeoutMs: this.connectTimeoutMs } : {}),
    });
    this.conn = conn;
    return conn;
  }

  private classify(e: unknown): DtsError {
    const ep = this.source!;
    const where = describeEndpoint(ep);
    const message = e instanceof Error ? e.message : String(e);
    if (e instanceof RespError && message.startsWith('NOPERM')) {
      const user = ep.username ?? 'default';
      return new DtsError(
        'HEARTBEAT_NOPERM',
        `${where}: the source user '${user}' may not write the heartbeat key (${firstWord(message)})`,
        `grant it: ACL SETUSER ${user} +time +set +del ~${this.opts!.prefix}*; or use --no-heartbeat (incremental.heartbeat.enabled: false; lag is then measured in bytes only)`,
        { cause: e },
      );
    }
    if (e instanceof RespError && message.startsWith('READONLY')) {
      return new DtsError(
        'HEARTBEAT_READONLY',
        `${where}: the source is a read-only replica, so the heartbeat key cannot be written (READONLY)`,
        'sync from the primary; or use --no-heartbeat (lag is then measured in bytes only)',
        { cause: e },
      );
    }
    return classifyRedisError(e, ep, 'heartbeat');
  }
}

function firstWord(message: string): string {
  return /^[A-Z]+/.exec(message)?.[0] ?? 'error';
}

/** TIME's [seconds, microseconds] as microseconds. */
function timeToUs(reply: RespValue): number {
  if (Array.isArray(reply) && reply.length === 2) {
    const s = Number(String(reply[0]));
    const us = Number(String(reply[1]));
    if (Number.isSafeInteger(s) && Number.isSafeInteger(us)) return s * 1_000_000 + us;
  }
  throw new Error(`unexpected TIME reply: ${String(reply)}`);
}

const MAX_MS_DIGITS = 16;

/**
 * Recognises our heartbeat in a command of the replication stream (`SET key value [PXAT …]`, any case)
 * and returns its value in ms; undefined for anything else. The key is `<prefix><taskId>` or, per shard,
 * `<prefix><taskId>:{tag}`: another task's heartbeat on the same source is not ours.
 */
export function isHeartbeat(argv: readonly Buffer[], prefix: string, taskId: string): number | undefined {
  if (argv.length < 3) return undefined;
  if (!isSet(argv[0]!)) return undefined;
  if (!isOurKey(argv[1]!, baseKey(prefix, taskId))) return undefined;
  return parseMs(argv[2]!);
}

/** Case-insensitive, without allocating: ASCII letters differ from their capitals only in bit 0x20. */
function isSet(cmd: Buffer): boolean {
  return (
    cmd.length === 3 && (cmd[0]! | 0x20) === 0x73 && (cmd[1]! | 0x20) === 0x65 && (cmd[2]! | 0x20) === 0x74
  );
}

let cachedBase: { prefix: string; taskId: string; key: Buffer } | undefined;

/** isHeartbeat runs for every SET of the stream: don't encode the same key each time. */
function baseKey(prefix: string, taskId: string): Buffer {
  if (cachedBase?.prefix !== prefix || cachedBase.taskId !== taskId) {
    cachedBase = { prefix, taskId, key: heartbeatKey(prefix, taskId) };
  }
  return cachedBase.key;
}

const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

function isOurKey(key: Buffer, base: Buffer): boolean {
  if (key.length < base.length || key.compare(base, 0, base.length, 0, base.length) !== 0) return false;
  if (key.length === base.length) return true;
  // `<base>:{tag}`: a longer task id that merely starts with ours must not match.
  return (
    key.length >= base.length + 3 &&
    key[base.length] === COLON &&
    key[base.length + 1] === OPEN_BRACE &&
    key[key.length - 1] === CLOSE_BRACE
  );
}

function parseMs(value: Buffer): number | undefined {
  if (value.length === 0 || value.length > MAX_MS_DIGITS) return undefined;
  let n = 0;
  for (const c of value) {
    if (c < 0x30 || c > 0x39) return undefined;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

import { commandLabel } from '../commands/catalogue.ts';
import { DtsError } from '../errors.ts';
import { printableKey } from '../fullsync/copy-key-in-parts.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import {
  bulkSize,
  type CommandArg,
  decimalLength,
  RespError,
  RespParser,
  type RespValue,
  writeAsciiBulk,
  writeBulk,
  writeDecimal,
} from '../redis/resp.ts';

export interface ApplyCommand {
  /** Destination db. */
  db: number;
  argv: Buffer[];
  /**
   * Cluster destinations only. `slot`: the hash slot of the command's keys (ALL_NODES: every node);
   * absent on our own writes (re-copies, skip entries), which are routed by their key. `end`: the stream
   * offset just after the command, so a node whose marker is already past it skips it on a resume.
   */
  slot?: number;
  end?: number;
}

/** ApplyCommand.slot of a command every destination node runs (FLUSHDB, FUNCTION LOAD…). */
export const ALL_NODES = -1;

/** What the incremental sync writes through: one MarkerApplier, or one per node of a cluster destination. */
export interface Applier {
  readonly skipKey: Buffer;
  readonly markerDb: number;
  /** The marker's own keys in markerDb (a SWAPDB of that db must carry them back). */
  readonly ownKeys: readonly Buffer[];
  /**
   * True when what follows the marker may be partly applied (no transactions: a cluster destination), so a
   * resume re-copies the keys written after it, as a catch-up does, instead of replaying them.
   */
  readonly resumeByCatchUp: boolean;
  readPosition(): Promise<MarkerPosition | undefined>;
  readSkipEntries(): Promise<Buffer[]>;
  removeMarker(): Promise<void>;
  apply(batch: readonly ApplyCommand[], position: MarkerPosition | undefined): Promise<void>;
  close(): Promise<void>;
  destroy(): void;
}

/** A source replication position: the stream offset just after the last applied command. */
export interface MarkerPosition {
  replid: string;
  offset: number;
  /**
   * The db the stream had selected there. A continued stream does not repeat its SELECT (the master
   * assumes the replica remembers), so resuming needs it; undefined while no SELECT was seen yet.
   */
  db?: number;
}

const MULTI = Buffer.from('*1\r\n$5\r\nMULTI\r\n');
const EXEC = Buffer.from('*1\r\n$4\r\nEXEC\r\n');
const SELECT_HEAD = Buffer.from('*2\r\n$6\r\nSELECT\r\n');
const SET_HEAD = Buffer.from('*3\r\n$3\r\nSET\r\n');

/**
 * Applies replicated commands to the destination exactly once (ARCHITECTURE.md, "Exactness" point 5):
 * each batch runs in `MULTI; commands…; SELECT markerDb; SET marker <replid>:<offset>; EXEC`, so the
 * marker and the batch's effects land together, and after a crash the marker says where to resume.
 *
 * What the destination holds when `apply` rejects:
 * - queue-time refusal (unknown/renamed command, wrong arity, OOM, NOPERM, READONLY…): Redis answers
 *   EXECABORT and runs NOTHING of the batch; the marker keeps the previous batch's position.
 * - runtime error (an error element in the EXEC reply, e.g. WRONGTYPE): Redis does not roll back; every
 *   other command of the batch ran AND the marker was moved to the batch's end. The destination may hold
 *   the batch partially and resuming from the marker would not redo it: the task must stop and say so.
 *   (A SELECT of a db the destination lacks is such a runtime error too, and the commands after it ran in
 *   the previous db; precheck's dbs-exist check is what keeps that from happening.)
 * - connection lost before the EXEC reply: the batch ran entirely or not at all; readPosition on a new
 *   applier tells which.
 * - MULTI itself refused (ACL): the commands ran one by one outside a transaction (APPLY_NOT_ATOMIC).
 * After any rejection the applier refuses further batches. Batches already pipelined behind a refused
 * one still reach the server; if one of them commits, the marker moves past a batch that was never
 * applied, so it rejects with APPLY_SKIPPED_BATCH: the destination has diverged and needs a fresh sync.
 * Capping pendingBatches bounds that window.
 */
export class MarkerApplier implements Applier {
  readonly resumeByCatchUp = false;
  /** `redis-dts:marker:<taskId>:<shardId>` in markerDb; on a cluster, shardId carries the node's hash tag. */
  readonly markerKey: string;
  /**
   * Hash beside the marker: source key → the stamp its re-copied state was read at (see SkipStamps).
   * Written in the same transactions as the re-copies, so it is exactly as durable as the marker.
   */
  readonly skipKey: Buffer;
  readonly markerDb: number;
  private readonly markerKeyBuf: Buffer;
  private readonly conn: RawConnection;
  private inFlight = 0;
  private inFlightBytes = 0;
  /** First failure: later batches are refused, and a later commit means a batch was skipped. */
  private broken: DtsError | undefined;
  /** applyUnwrapped: the marker's value after the last batch that ran without an error (null: none). */
  private confirmedMarker: Buffer | null = null;

  private constructor(conn: RawConnection, markerKey: string, markerDb: number) {
    this.conn = conn;
    this.markerKey = markerKey;
    this.markerKeyBuf = Buffer.from(markerKey);
    this.skipKey = Buffer.from(`${markerKey}:skip`);
    this.markerDb = markerDb;
  }

  static async open(
    target: RedisEndpoint,
    o: { taskId: string; shardId: string; markerDb: number },
  ): Promise<MarkerApplier> {
    // Every committed batch ends with SELECT markerDb, and a refused one changes nothing, so the
    // connection is in markerDb before each batch: that is what the encoder assumes.
    const conn = await RawConnection.open(target, { db: o.markerDb, clientName: 'redis-dts-apply' });
    return new MarkerApplier(conn, markerKeyFor(o.taskId, o.shardId), o.markerDb);
  }

  get ownKeys(): readonly Buffer[] {
    return [this.markerKeyBuf, this.skipKey];
  }

  /** Batches written whose EXEC reply has not arrived. */
  get pendingBatches(): number {
    return this.inFlight;
  }

  /** Bytes of those batches. */
  get pendingBytes(): number {
    return this.inFlightBytes;
  }

  async readPosition(): Promise<MarkerPosition | undefined> {
    const [, value] = await this.conn.pipeline([
      ['SELECT', this.markerDb],
      ['GET', this.markerKeyBuf],
    ]);
    if (value instanceof RespError) throw this.replyError('reading the marker', value);
    if (value === null || value === undefined) return undefined;
    return parseMarker(Buffer.isBuffer(value) ? value.toString('latin1') : String(value), this.markerKey);
  }

  /**
   * Writes the batch at once (pipelined behind earlier ones); resolves when its EXEC reply arrives.
   * An empty batch only moves the marker. Without a position the batch is still one transaction but
   * leaves the marker alone (the catch-up's re-copies, written before any marker exists).
   */
  apply(batch: readonly ApplyCommand[], position: MarkerPosition | undefined): Promise<void> {
    if (this.broken) return Promise.reject(this.afterFailure());
    const out = this.encode(batch, position, true);
    const replies = 2 + queuedCount(batch, this.markerDb, position !== undefined);
    this.inFlight++;
    this.inFlightBytes += out.length;
    return new Promise<void>((resolve, reject) => {
      let queueError: { index: number; error: RespError } | undefined;
      let exec: RespValue = null;
      const settle = () => {
        this.inFlight--;
        this.inFlightBytes -= out.length;
      };
      const fail = (e: DtsError) => {
        this.broken ??= e;
        reject(e);
      };
      this.conn.write(out, replies, {
        onReply: (v, i) => {
          if (i === replies - 1) exec = v;
          else if (v instanceof RespError && !queueError) queueError = { index: i, error: v };
        },
        onDone: () => {
          settle();
          const e = this.outcome(out, position, queueError, exec);
          if (e) fail(e);
          else resolve();
        },
        onFail: (err) => {
          settle();
          fail(
            new DtsError(
              'APPLY_INTERRUPTED',
              `${this.who()}: the connection failed before the batch ending at ${positionText(position)} ` +
                `was confirmed (${err.message}); it was applied entirely or not at all`,
              'resume the task: it reads the applied position from the marker key',
              { cause: err },
            ),
          );
        },
      });
    });
  }

  /**
   * The batch without a transaction, the marker SET last: a cluster node refuses a transaction over
   * several slots. When it resolves every command ran and the marker moved; after a failure the batch may
   * be partly applied with the marker still before it, which is why a cluster resume re-copies the keys
   * written after the lowest marker instead of replaying them (ClusterMarkerApplier).
   */
  applyUnwrapped(batch: readonly ApplyCommand[], position: MarkerPosition | undefined): Promise<void> {
    if (this.broken) return Promise.reject(this.afterFailure());
    const out = this.encode(batch, position, false);
    const replies = queuedCount(batch, this.markerDb, position !== undefined);
    if (replies === 0) return Promise.resolve();
    const marker = position && Buffer.from(markerValue(position));
    return new Promise<void>((resolve, reject) => {
      let failed: { index: number; error: RespError } | undefined;
      const fail = (e: DtsError) => {
        this.broken ??= e;
        reject(e);
      };
      this.conn.write(out, replies, {
        onReply: (v, i) => {
          if (v instanceof RespError && !failed) failed = { index: i, error: v };
        },
        onDone: () => {
          if (!failed) {
            if (marker && !this.broken) this.confirmedMarker = marker;
            return resolve();
          }
          const error = new DtsError(
            'APPLY_FAILED',
            `${this.who()}: ${this.describeQueued(out, failed.index, false)} failed (${failed.error.message}) in ` +
              `the batch ending at ${positionText(position)}, which may be partly applied; the marker was set back before it`,
            'fix the cause, then resume the task: the keys written after the marker are copied again from the source',
          );
          this.broken ??= error;
          // Without a transaction the marker SET ran after the failed command: put back the last one that
          // held (batches pipelined behind this one ran too, and are undone the same way).
          const undo: CommandArg[] = this.confirmedMarker
            ? ['SET', this.markerKeyBuf, this.confirmedMarker]
            : ['DEL', this.markerKeyBuf];
          this.conn.call(undo).then(
            () => reject(error),
            (e: Error) =>
              reject(
                new DtsError(
                  'APPLY_FAILED',
                  `${error.message}, but setting the marker back failed too (${e.message}): the destination may ` +
                    'differ from the source after it',
                  'run the task again with a fresh full sync',
                ),
              ),
          );
        },
        onFail: (err) =>
          fail(
            new DtsError(
              'APPLY_INTERRUPTED',
              `${this.who()}: the connection failed during the batch ending at ${positionText(position)} ` +
                `(${err.message}); it may be partly applied, the marker stays before it`,
              'resume the task: the keys written after the marker are copied again from the source',
              { cause: err },
            ),
          ),
      });
    });
  }

  /** applyUnwrapped: takes the marker's current value as the one to set back to after a failed batch. */
  async trackMarker(): Promise<void> {
    const value = await this.conn.call(['GET', this.markerKeyBuf]);
    if (value instanceof RespError) throw this.replyError('reading the marker', value);
    this.confirmedMarker = Buffer.isBuffer(value) ? value : null;
  }

  /** The skip hash as HGETALL returns it: field, value, field, value… */
  async readSkipEntries(): Promise<Buffer[]> {
    const [, reply] = await this.conn.pipeline([
      ['SELECT', this.markerDb],
      ['HGETALL', this.skipKey],
    ]);
    if (reply instanceof RespError) throw this.replyError('reading the skip stamps', reply);
    return Array.isArray(reply) ? (reply as Buffer[]) : [];
  }

  /** Removes the marker and its skip hash (the task ended, or a catch-up starts over). */
  async removeMarker(): Promise<void> {
    const [, reply] = await this.conn.pipeline([
      ['SELECT', this.markerDb],
      ['DEL', this.markerKeyBuf, this.skipKey],
    ]);
    if (reply instanceof RespError) throw this.replyError('removing the marker', reply);
  }

  /** Waits for the batches in flight, then closes. */
  async close(): Promise<void> {
    await this.conn.close();
  }

  /** Drops the connection at once; batches in flight reject with APPLY_INTERRUPTED. */
  destroy(): void {
    this.conn.destroy();
  }

  private afterFailure(): DtsError {
    return new DtsError(
      'APPLY_AFTER_FAILURE',
      `${this.who()}: a batch was not applied because an earlier one failed (${this.broken!.message})`,
      this.broken!.fix,
    );
  }

  private encode(
    batch: readonly ApplyCommand[],
    position: MarkerPosition | undefined,
    transaction: boolean,
  ): Buffer {
    const marker = position && Buffer.from(markerValue(position));
    let size =
      (transaction ? MULTI.length + EXEC.length : 0) + (marker ? setSize(this.markerKeyBuf, marker) : 0);
    let db = this.markerDb;
    for (const c of batch) {
      if (c.db !== db) {
        size += selectSize(c.db);
        db = c.db;
      }
      size += 3 + decimalLength(c.argv.length);
      for (const a of c.argv) size += bulkSize(a.length);
    }
    if (db !== this.markerDb) size += selectSize(this.markerDb);

    const out = Buffer.allocUnsafe(size);
    let pos = transaction ? MULTI.copy(out, 0) : 0;
    db = this.markerDb;
    for (const c of batch) {
      if (c.db !== db) {
        pos = writeSelect(out, pos, c.db);
        db = c.db;
      }
      out[pos++] = 0x2a; // '*'
      pos = writeDecimal(out, pos, c.argv.length);
      out[pos++] = 13;
      out[pos++] = 10;
      for (const a of c.argv) pos = writeBulk(out, pos, a);
    }
    if (db !== this.markerDb) pos = writeSelect(out, pos, this.markerDb);
    if (marker) {
      pos += SET_HEAD.copy(out, pos);
      pos = writeBulk(out, pos, this.markerKeyBuf);
      pos = writeBulk(out, pos, marker);
    }
    if (transaction) pos += EXEC.copy(out, pos);
    return out;
  }

  /** The DtsError for a batch's replies, or undefined when it committed cleanly. */
  private outcome(
    encoded: Buffer,
    position: MarkerPosition | undefined,
    queueError: { index: number; error: RespError } | undefined,
    exec: RespValue,
  ): DtsError | undefined {
    const at = positionText(position);
    if (queueError?.index === 0) {
      // Without MULTI, Redis ran each command as it arrived: nothing was atomic.
      return new DtsError(
        'APPLY_NOT_ATOMIC',
        `${this.who()}: MULTI was refused (${queueError.error.message}), so the batch ending at ${at} ran ` +
          'command by command outside a transaction, and may be partly applied with or without its marker',
        'allow the user MULTI and EXEC on the destination, then run the task again with a fresh full sync',
      );
    }
    if (queueError || !Array.isArray(exec)) {
      // MULTI (index 0) or a queued command was refused, or EXEC itself failed: nothing ran.
      const error =
        queueError?.error ?? (exec instanceof RespError ? exec : new RespError('ERR no EXEC reply'));
      const what = queueError ? this.describeQueued(encoded, queueError.index - 1) : 'the transaction';
      return new DtsError(
        'APPLY_REJECTED',
        `${this.who()}: ${what} was refused (${error.message}); nothing of the batch ending at ${at} ` +
          'was applied and the marker was not moved',
        'make the destination accept the command (version, renamed or disabled commands, ACL, maxmemory, ' +
          'read-only replica), then resume the task',
      );
    }
    const failed = exec.findIndex((v) => v instanceof RespError);
    if (failed >= 0) {
      const error = exec[failed] as RespError;
      const markerMoved = position !== undefined && !(exec[exec.length - 1] instanceof RespError);
      return new DtsError(
        'APPLY_PARTIAL',
        `${this.who()}: ${this.describeQueued(encoded, failed)} failed (${error.message}) inside the batch ending ` +
          `at ${at}; Redis does not roll back, so the rest of the batch was applied, ` +
          `${markerMoved ? 'the marker was moved to its end' : 'the marker was not moved'}, and the ` +
          'destination may differ from the source',
        /proto-max-bulk-len/.test(error.message)
          ? "raise the destination's proto-max-bulk-len to at least the source's (see the precheck item " +
              'target-bulk-limit), then run the task again with a fresh full sync'
          : 'find why the destination disagrees with the source about that key (e.g. a write made directly on the ' +
              'destination), then run the task again with a fresh full sync',
      );
    }
    if (this.broken) {
      return new DtsError(
        'APPLY_SKIPPED_BATCH',
        `${this.who()}: the batch ending at ${at} committed after an earlier batch failed ` +
          `(${this.broken.message}); the marker now lies past commands that were never applied`,
        'run the task again with a fresh full sync',
      );
    }
    return undefined;
  }

  /**
   * Names the queued command at `queued` (0-based, after MULTI), read back from the encoded batch: keeping
   * the batch's commands until their reply would hold thousands of objects past young collections.
   */
  private describeQueued(encoded: Buffer, queued: number, transaction = true): string {
    const commands: Buffer[][] = [];
    new RespParser((v) => {
      commands.push(v as Buffer[]);
    }).feed(encoded);
    let db = this.markerDb;
    // In a transaction commands[0] is MULTI and the last is EXEC.
    const skip = transaction ? 1 : 0;
    for (let i = skip; i < commands.length - skip; i++) {
      const argv = commands[i]!;
      const name = argv[0]!.toString('latin1').toUpperCase();
      if (name === 'SELECT') db = Number(argv[1]!.toString('latin1'));
      if (i - skip !== queued) continue;
      if (name === 'SELECT') return `SELECT ${db}`;
      if (name === 'SET' && argv[1]!.toString('latin1').startsWith('redis-dts:marker:')) {
        return `SET of the marker key ${printableKey(argv[1]!)} in db${this.markerDb}`;
      }
      const key = argv[1] ? ` ${printableKey(argv[1])}` : '';
      return `db${db} ${commandLabel(argv)}${key}`;
    }
    return `command ${queued + 1} of the transaction`;
  }

  private replyError(during: string, error: RespError): DtsError {
    return new DtsError(
      'MARKER_ACCESS_FAILED',
      `${this.who()}: ${during} ${printableKey(this.markerKeyBuf)} in db${this.markerDb} failed (${error.message})`,
      'allow the user GET/SET/DEL on keys starting with redis-dts:marker: and SELECT of the marker db',
    );
  }

  private who(): string {
    return describeEndpoint(this.conn.endpoint);
  }
}

export function markerKeyFor(taskId: string, shardId: string): string {
  return `redis-dts:marker:${taskId}:${shardId}`;
}

/** `<replid>:<offset>:<db>`, the db empty when unknown. */
function markerValue(p: MarkerPosition): string {
  return `${p.replid}:${p.offset}:${p.db ?? ''}`;
}

export function parseMarker(text: string, markerKey: string): MarkerPosition {
  const [replid = '', offset = '', db, ...rest] = text.split(':');
  if (!replid || !/^\d+$/.test(offset) || (db !== undefined && !/^\d*$/.test(db)) || rest.length > 0) {
    throw new DtsError(
      'BAD_MARKER',
      `the marker key ${markerKey} on the destination holds ${JSON.stringify(text.slice(0, 80))}, ` +
        'not <replid>:<offset>',
      'something other than redis-dts wrote it: delete the key and run the task again with a fresh full sync',
    );
  }
  return { replid, offset: Number(offset), ...(db ? { db: Number(db) } : {}) };
}

function positionText(p: MarkerPosition | undefined): string {
  return p ? `${p.replid}:${p.offset}` : '(a catch-up batch)';
}

/** Replies between MULTI and EXEC: the commands, the SELECTs the encoder adds, and the marker SET. */
function queuedCount(batch: readonly ApplyCommand[], markerDb: number, withMarker: boolean): number {
  let n = withMarker ? 1 : 0;
  let db = markerDb;
  for (const c of batch) {
    if (c.db !== db) {
      n++;
      db = c.db;
    }
    n++;
  }
  return db !== markerDb ? n + 1 : n;
}

function selectSize(db: number): number {
  return SELECT_HEAD.length + bulkSize(decimalLength(db));
}

function setSize(key: Buffer, value: Buffer): number {
  return SET_HEAD.length + bulkSize(key.length) + bulkSize(value.length);
}

function writeSelect(out: Buffer, pos: number, db: number): number {
  pos += SELECT_HEAD.copy(out, pos);
  return writeAsciiBulk(out, pos, String(db));
}

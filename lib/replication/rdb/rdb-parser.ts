import { DtsError } from '../../errors.ts';
import { Crc64 } from './crc64.ts';
import { dumpPayload } from './dump-payload.ts';
import { Malformed, NEED_MORE, RdbCursor, StringTooLong } from './rdb-cursor.ts';
import {
  type RdbPlace,
  rdbChecksumMismatch,
  rdbCorrupt,
  rdbModuleAux,
  rdbModuleValue,
  rdbTruncated,
  rdbUnsupportedType,
  rdbValueTooLarge,
  rdbVersionUnsupported,
} from './rdb-errors.ts';
import { FIRST_RDB_VERSION_WITH_CHECKSUM, moduleTypeOf, NEWEST_RDB_VERSION, OPCODE } from './rdb-format.ts';
import { ValueDrain } from './value-drain.ts';
import { skipValue, UnsupportedValue } from './value-skipper.ts';

/** One key of the RDB, ready for `RESTORE key <expireAtMs|0> payload REPLACE ABSTTL` in its db. */
export interface RdbKeyEntry {
  kind: 'key';
  db: number;
  key: Buffer;
  /** The RDB value type (rdb-format.ts TYPE). */
  type: number;
  /** A DUMP payload: the value's bytes as they stand in the RDB, the RDB version and a CRC64. */
  payload: Buffer;
  /** Absolute expiry in ms, or undefined for a key without one. */
  expireAtMs: number | undefined;
}

/** One function library (Redis 7+), ready for `FUNCTION RESTORE payload`. */
export interface RdbFunctionEntry {
  kind: 'function';
  /** The library's source, `#!lua name=…` first. */
  code: Buffer;
  payload: Buffer;
}

export type RdbEntry = RdbKeyEntry | RdbFunctionEntry;

/** What the RDB said about itself, known once end() returned. */
export interface RdbSummary {
  rdbVersion: number;
  /** AUX fields as written: redis-ver, redis-bits, ctime, used-mem, repl-id, repl-offset, aof-base … */
  aux: Record<string, string>;
  /** The server that wrote the RDB, from AUX (`redis-ver`, or `valkey-ver` on Valkey), e.g. `7.2.6`. */
  serverVersion: string | undefined;
  keys: number;
  functions: number;
  /** RDB payload bytes parsed. */
  bytes: number;
  /** 'verified': the CRC64 after EOF matched; 'disabled': the source writes 0 (rdbchecksum no); 'absent': RDB < 5. */
  checksum: 'verified' | 'disabled' | 'absent';
}

/**
 * A key as its value's bytes stand in the RDB: `src[start..end)` is the serialized value after the type
 * byte, valid only during the call (a view of the parser's or the socket's buffer); so is `key`.
 */
export interface RdbRawKey {
  db: number;
  key: Buffer;
  type: number;
  src: Buffer;
  start: number;
  end: number;
  expireAtMs: number | undefined;
  rdbVersion: number;
}

/** A key whose value was too large to hand over: only its name and where it was. */
export interface RdbOversizedKey {
  db: number;
  key: Buffer;
  type: number;
  expireAtMs: number | undefined;
}

export interface RdbParserOptions {
  onEntry: (entry: RdbEntry) => void;
  /** With it, keys come here instead of to onEntry, without a payload built (the caller encodes it). */
  onRawKey?: (key: RdbRawKey) => void;
  /**
   * With it, a key whose value passes maxValueBytes is walked over as it arrives, never held, and named
   * here (to be copied from the source another way) instead of refused with RDB_VALUE_TOO_LARGE.
   * Streams and module values are still refused.
   */
  onOversized?: (key: RdbOversizedKey) => void;
  /**
   * A key whose serialized form (name and value) passes this many bytes is refused with
   * RDB_VALUE_TOO_LARGE before it is buffered whole (default: no limit).
   */
  maxValueBytes?: number;
}

type State = 'magic' | 'body' | 'drain' | 'checksum' | 'done';

const MAGIC = Buffer.from('REDIS');
const HEADER_BYTES = 9;
const MIN_BUFFER = 64 * 1024;
const RDB_FUNCTION2 = OPCODE.FUNCTION2;

/** Value types (rdb.h rdbIsObjectType): 0–7 and 9–25. */
function isValueType(t: number): boolean {
  return (t >= 0 && t <= 7) || (t >= 9 && t <= 25);
}

/**
 * A push parser for the RDB a master sends a replica: feed it the payload in pieces (push), then call
 * end(). It walks the opcodes and hands each key over as a RESTORE payload, copying value bytes without
 * decoding them. Between pieces it keeps only the unfinished item, so memory is bounded by the largest
 * key, not the RDB.
 *
 * Entries are handed over before the RDB's own CRC64 (at its very end) is checked: until end() returns,
 * what was handed over is unconfirmed, and a caller that has written it must say so if end() throws.
 */
export class RdbParser {
  private readonly onEntry: (entry: RdbEntry) => void;
  private readonly onRawKey: ((key: RdbRawKey) => void) | undefined;
  private readonly onOversized: ((key: RdbOversizedKey) => void) | undefined;
  private drain:
    | { walker: ValueDrain; key: Buffer; type: number; db: number; expireAtMs: number | undefined }
    | undefined;
  private readonly maxItemBytes: number;
  private readonly cursor = new RdbCursor();
  private readonly crc = new Crc64();
  private state: State = 'magic';
  private version = 0;
  private readonly aux: Record<string, string> = {};
  private db = 0;
  private expireAtMs: number | undefined;
  private keys = 0;
  private functions = 0;
  private checksum: RdbSummary['checksum'] = 'absent';
  /** The unfinished item's bytes: pend[0..pendLen). */
  private pend = Buffer.alloc(0);
  private pendLen = 0;
  /** Try the unfinished item again once pendLen reaches this (doubling, so a big value is walked O(1) times). */
  private retryAt = 0;
  /** RDB offset of the first byte not yet consumed. */
  private consumed = 0;
  private crcFrom = 0;
  private peakBuffer = 0;
  /** The key being read, for errors only. */
  private currentKey: Buffer | undefined;

  constructor(options: RdbParserOptions) {
    this.onEntry = options.onEntry;
    this.onRawKey = options.onRawKey;
    this.onOversized = options.onOversized;
    this.maxItemBytes = options.maxValueBytes ?? Number.POSITIVE_INFINITY;
    this.cursor.maxStringBytes = this.maxItemBytes;
  }

  /** Parses what it can of the next piece of RDB payload (the Buffer is not kept). */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.state === 'done') throw rdbCorrupt('bytes after the end of the RDB', this.place(this.consumed));
    if (this.pendLen === 0) {
      this.walk(chunk, chunk.length, false);
      return;
    }
    this.append(chunk);
    if (this.pendLen >= this.retryAt) this.walk(this.pend, this.pendLen, false);
  }

  /** The RDB version from the header (0 before it arrived). */
  get rdbVersion(): number {
    return this.version;
  }

  /** The server that writes the RDB, from AUX, which precedes every key (see RdbSummary.serverVersion). */
  get serverVersion(): string | undefined {
    return this.aux['valkey-ver'] ?? this.aux['redis-ver'];
  }

  /** The largest the buffer for unfinished items has been: bounded by the largest key, not the RDB. */
  get peakBufferBytes(): number {
    return this.peakBuffer;
  }

  /** Call after the last byte: parses what is left, checks the CRC64 and returns what the RDB said. */
  end(): RdbSummary {
    if (this.state !== 'done' && this.pendLen > 0) this.walk(this.pend, this.pendLen, true);
    if (this.state !== 'done') throw rdbTruncated(this.consumed + this.pendLen);
    return {
      rdbVersion: this.version,
      aux: { ...this.aux },
      serverVersion: this.serverVersion,
      keys: this.keys,
      functions: this.functions,
      bytes: this.consumed,
      checksum: this.checksum,
    };
  }

  /** Parses items from data[0..end) (a socket piece, or the pending buffer), keeping the unfinished tail. */
  private walk(data: Buffer, end: number, final: boolean): void {
    const c = this.cursor;
    c.reset(data, 0, end);
    let pos = 0;
    this.crcFrom = 0;
    for (;;) {
      try {
        while (pos < end && this.state !== 'done') {
          c.pos = pos;
          this.currentKey = undefined;
          this.step(c, data);
          pos = c.pos;
        }
        if (pos < end) throw rdbCorrupt('bytes after the end of the RDB', this.place(this.consumed + pos));
        break;
      } catch (e) {
        const drainAt = this.tooLarge(e, c, pos) ? this.startDrain(c, pos) : undefined;
        if (drainAt !== undefined) {
          pos = drainAt;
          continue;
        }
        if (e !== NEED_MORE) throw this.named(e, this.consumed + pos);
        const needed = c.needed - pos;
        if (needed > this.maxItemBytes) {
          throw rdbValueTooLarge(needed, this.maxItemBytes, this.place(this.consumed + pos));
        }
        if (final) throw rdbTruncated(this.consumed + end);
        this.retryAt = Math.min(Math.max(needed, 2 * (end - pos)), this.maxItemBytes + 1);
        break;
      }
    }
    if (this.state === 'body' || this.state === 'magic' || this.state === 'drain') {
      this.crc.update(data, this.crcFrom, pos);
    }
    this.consumed += pos;
    this.keep(data, pos, end);
  }

  /** The item at pos cannot be held: a value over maxValueBytes, with onOversized there to take it. */
  private tooLarge(e: unknown, c: RdbCursor, pos: number): boolean {
    if (!this.onOversized || this.state !== 'body') return false;
    return e instanceof StringTooLong || (e === NEED_MORE && c.needed - pos > this.maxItemBytes);
  }

  /**
   * Re-reads the key item at pos up to its value and walks the value as it arrives (ValueDrain) instead
   * of buffering it. Undefined when that cannot be done (not a key, a type without an outer layout, a
   * key name itself too long): the size refusal stands then.
   */
  private startDrain(c: RdbCursor, pos: number): number | undefined {
    try {
      c.pos = pos;
      const type = c.byte();
      if (!isValueType(type)) return undefined;
      const drain = ValueDrain.for(type);
      if (!drain) return undefined;
      const key = c.string();
      this.drain = { walker: drain, key, type, db: this.db, expireAtMs: this.expireAtMs };
      this.expireAtMs = undefined;
      this.state = 'drain';
      return c.pos;
    } catch {
      return undefined;
    }
  }

  /** One opcode with its operands, or one key with its value. State changes only once every read succeeded. */
  private step(c: RdbCursor, data: Buffer): void {
    if (this.state === 'magic') {
      this.readMagic(c, data);
      return;
    }
    if (this.state === 'checksum') {
      this.readChecksum(c, data);
      return;
    }
    if (this.state === 'drain') {
      const d = this.drain!;
      if (!d.walker.step(c)) return;
      this.state = 'body';
      this.drain = undefined;
      this.keys++;
      this.onOversized!({ db: d.db, key: d.key, type: d.type, expireAtMs: d.expireAtMs });
      return;
    }
    const op = c.byte();
    switch (op) {
      case OPCODE.AUX: {
        const name = c.string().toString('utf8');
        const value = c.string().toString('utf8');
        this.aux[name] = value;
        return;
      }
      case OPCODE.SELECTDB:
        this.db = c.length();
        return;
      case OPCODE.RESIZEDB:
        c.length();
        c.length();
        return;
      case OPCODE.SLOT_INFO:
        // Slot id, keys in the slot, keys with an expiry: sizing hints for a cluster-mode loader.
        c.length();
        c.length();
        c.length();
        return;
      case OPCODE.EXPIRETIME_MS:
        this.expireAtMs = c.uint64LE();
        return;
      case OPCODE.EXPIRETIME:
        this.expireAtMs = c.uint32LE() * 1000;
        return;
      case OPCODE.IDLE:
        c.length();
        return;
      case OPCODE.FREQ:
        c.byte();
        return;
      case OPCODE.MODULE_AUX:
        throw new UnsupportedValue(op, 'module data', c.bigLength());
      case OPCODE.FUNCTION_PRE_GA:
        throw rdbCorrupt(
          'functions in the format of Redis 7.0 release candidates, which no release reads',
          this.place(this.consumed + c.pos - 1),
        );
      case RDB_FUNCTION2: {
        const start = c.pos;
        const code = c.string();
        const payload = dumpPayload(RDB_FUNCTION2, data, start, c.pos, this.version);
        this.functions++;
        this.onEntry({ kind: 'function', code, payload });
        return;
      }
      case OPCODE.EOF:
        this.crc.update(data, this.crcFrom, c.pos);
        this.state = this.version >= FIRST_RDB_VERSION_WITH_CHECKSUM ? 'checksum' : 'done';
        return;
      default:
        this.readKey(c, data, op);
        return;
    }
  }

  private readKey(c: RdbCursor, data: Buffer, type: number): void {
    if (!isValueType(type)) throw new Malformed(`an unknown opcode or value type ${type}`);
    // Raw keys are taken before the next piece is fed: their name needs no copy of its own (one
    // allocation per key that nothing kept).
    const key = this.onRawKey ? c.stringView() : c.string();
    this.currentKey = key;
    const start = c.pos;
    skipValue(c, type);
    if (this.onRawKey) {
      const expireAtMs = this.expireAtMs;
      this.expireAtMs = undefined;
      this.keys++;
      this.onRawKey({
        db: this.db,
        key,
        type,
        src: data,
        start,
        end: c.pos,
        expireAtMs,
        rdbVersion: this.version,
      });
      return;
    }
    const entry: RdbKeyEntry = {
      kind: 'key',
      db: this.db,
      key,
      type,
      payload: dumpPayload(type, data, start, c.pos, this.version),
      expireAtMs: this.expireAtMs,
    };
    this.expireAtMs = undefined;
    this.keys++;
    this.onEntry(entry);
  }

  private readMagic(c: RdbCursor, data: Buffer): void {
    c.skip(HEADER_BYTES);
    const at = c.pos - HEADER_BYTES;
    const digits = data.toString('latin1', at + MAGIC.length, at + HEADER_BYTES);
    if (!data.subarray(at, at + MAGIC.length).equals(MAGIC) || !/^\d{4}$/.test(digits)) {
      throw rdbCorrupt(`it does not start with REDIS and 4 digits of version`, this.place(0));
    }
    const version = Number(digits);
    if (version < 1 || version > NEWEST_RDB_VERSION) throw rdbVersionUnsupported(version, NEWEST_RDB_VERSION);
    this.version = version;
    this.state = 'body';
  }

  private readChecksum(c: RdbCursor, data: Buffer): void {
    c.skip(8);
    const at = c.pos - 8;
    const stored = data.readBigUInt64LE(at);
    if (stored === 0n) this.checksum = 'disabled';
    else if (this.crc.equalsLE(data, at)) this.checksum = 'verified';
    else throw rdbChecksumMismatch(stored, this.crc.value(), this.consumed + at);
    this.state = 'done';
  }

  /** Moves data[pos..end) to the front of the pending buffer. */
  private keep(data: Buffer, pos: number, end: number): void {
    const left = end - pos;
    if (data === this.pend) {
      if (pos > 0 && left > 0) this.pend.copyWithin(0, pos, end);
    } else if (left > 0) {
      this.reserve(left, 0);
      data.copy(this.pend, 0, pos, end);
    }
    this.pendLen = left;
    if (left === 0) {
      this.retryAt = 0;
      // Let a buffer grown for one big value go.
      if (this.pend.length > MIN_BUFFER) this.pend = Buffer.alloc(0);
    }
  }

  private append(chunk: Buffer): void {
    this.reserve(this.pendLen + chunk.length, this.pendLen);
    chunk.copy(this.pend, this.pendLen);
    this.pendLen += chunk.length;
  }

  /** Grows the pending buffer to hold `bytes`, keeping its first `keep` bytes. */
  private reserve(bytes: number, keep: number): void {
    if (this.pend.length >= bytes) return;
    const grown = Buffer.allocUnsafe(Math.max(bytes, 2 * this.pend.length, MIN_BUFFER));
    this.pend.copy(grown, 0, 0, keep);
    this.pend = grown;
    this.peakBuffer = Math.max(this.peakBuffer, grown.length);
  }

  private place(offset: number): RdbPlace {
    // currentKey may be a view of the data being walked: copied before that data moves.
    return { offset, db: this.db, key: this.currentKey && Buffer.from(this.currentKey) };
  }

  private named(e: unknown, offset: number): unknown {
    const place = this.place(offset);
    if (e instanceof DtsError) return e;
    if (e instanceof Malformed) return rdbCorrupt(e.message, place);
    if (e instanceof StringTooLong) return rdbValueTooLarge(e.bytes, this.maxItemBytes, place);
    if (e instanceof UnsupportedValue) {
      if (e.moduleId === undefined) return rdbUnsupportedType(e.type, place, e.message);
      const { name } = moduleTypeOf(e.moduleId);
      return e.type === OPCODE.MODULE_AUX ? rdbModuleAux(name, place) : rdbModuleValue(name, place);
    }
    return e;
  }
}

import { bulkSize, copyBytes, decimalLength, writeBulk, writeDecimal } from '../redis/resp.ts';
import { Crc64 } from '../replication/rdb/crc64.ts';
import { DUMP_FOOTER_BYTES } from '../replication/rdb/dump-payload.ts';

/** RESTORE commands already encoded for one connection, and where each one's key name lies in them. */
export interface EncodedRestores {
  buf: Buffer;
  count: number;
  /** The key of the n-th command (a view of buf). */
  keyAt(n: number): Buffer;
  /** Once the commands are acknowledged: their buffer may be filled again (less garbage, a flat RSS). */
  release(): void;
}

const RESTORE_HEAD = Buffer.from('*6\r\n$7\r\nRESTORE\r\n');
const REPLACE_ABSTTL = Buffer.from('$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n');
/** A key without expiry: ABSTTL says nothing about a TTL of 0, and one argument fewer is parsed per key. */
const RESTORE_HEAD_NO_TTL = Buffer.from('*5\r\n$7\r\nRESTORE\r\n');
const REPLACE = Buffer.from('$7\r\nREPLACE\r\n');
const MIN_CAPACITY = 64 * 1024;
/** Kept per encoder: as many as its batches in flight, roughly. */
const MAX_FREE = 4;

/**
 * Encodes `RESTORE key expireAt payload REPLACE ABSTTL` straight from a value's bytes in the RDB: the
 * DUMP payload (type byte, the bytes, the RDB version, the CRC64) is built in place in the batch, so a
 * key costs one copy of its value instead of a payload Buffer, a copy into the command and the garbage
 * of both (a fifth of the RDB load's time went to the GC with per-key payloads).
 */
export class RestoreEncoder {
  private buf: Buffer = Buffer.allocUnsafe(MIN_CAPACITY);
  /** Buffers of acknowledged batches, reused by the next ones. */
  private readonly free: Buffer[] = [];
  private pos = 0;
  private keyStarts: number[] = [];
  private keyLengths: number[] = [];

  get count(): number {
    return this.keyStarts.length;
  }

  get bytes(): number {
    return this.pos;
  }

  /** The DUMP payload's size for `valueBytes` of serialized value (type byte and footer included). */
  static payloadBytes(valueBytes: number): number {
    return 1 + valueBytes + DUMP_FOOTER_BYTES;
  }

  add(
    key: Buffer,
    expireAtMs: number,
    type: number,
    src: Buffer,
    start: number,
    end: number,
    rdbVersion: number,
  ): void {
    const payload = RestoreEncoder.payloadBytes(end - start);
    this.reserve(
      RESTORE_HEAD.length +
        bulkSize(key.length) +
        bulkSize(decimalLength(expireAtMs)) +
        bulkSize(payload) +
        REPLACE_ABSTTL.length,
    );
    const out = this.buf;
    const head = expireAtMs === 0 ? RESTORE_HEAD_NO_TTL : RESTORE_HEAD;
    const tail = expireAtMs === 0 ? REPLACE : REPLACE_ABSTTL;
    let pos = copyBytes(head, 0, head.length, out, this.pos);
    this.keyStarts.push(pos + 1 + decimalLength(key.length) + 2);
    this.keyLengths.push(key.length);
    pos = writeBulk(out, pos, key);
    out[pos++] = 0x24;
    pos = writeDecimal(out, pos, decimalLength(expireAtMs));
    out[pos++] = 13;
    out[pos++] = 10;
    pos = writeDecimal(out, pos, expireAtMs);
    out[pos++] = 13;
    out[pos++] = 10;
    out[pos++] = 0x24;
    pos = writeDecimal(out, pos, payload);
    out[pos++] = 13;
    out[pos++] = 10;
    const payloadStart = pos;
    out[pos++] = type;
    pos = copyBytes(src, start, end, out, pos);
    out[pos++] = rdbVersion & 0xff;
    out[pos++] = rdbVersion >>> 8;
    new Crc64().update(out, payloadStart, pos).writeLE(out, pos);
    pos += 8;
    out[pos++] = 13;
    out[pos++] = 10;
    this.pos = copyBytes(tail, 0, tail.length, out, pos);
  }

  /** The commands so far; the encoder starts a new buffer (the taken one stays valid). */
  take(): EncodedRestores {
    const whole = this.buf;
    const buf = whole.subarray(0, this.pos);
    const starts = this.keyStarts;
    const lengths = this.keyLengths;
    this.buf = this.free.pop() ?? Buffer.allocUnsafe(Math.max(MIN_CAPACITY, this.pos));
    this.pos = 0;
    this.keyStarts = [];
    this.keyLengths = [];
    let released = false;
    return {
      buf,
      count: starts.length,
      keyAt: (n) => buf.subarray(starts[n]!, starts[n]! + lengths[n]!),
      release: () => {
        if (released) return;
        released = true;
        if (this.free.length < MAX_FREE) this.free.push(whole);
      },
    };
  }

  private reserve(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.pos + bytes));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

import { lzfDecompress } from './lzf.ts';

/**
 * Thrown (one shared instance, no stack) when the bytes at hand end inside the item being read: the
 * parser keeps the item's bytes and tries again once more have arrived. `cursor.needed` then says how
 * many bytes (from the start of the buffer) the read that failed would have needed.
 */
export const NEED_MORE: { readonly needMore: true } = Object.freeze({ needMore: true });

/** A string whose declared length passes the cursor's limit (the caller names the key). */
export class StringTooLong extends Error {
  readonly bytes: number;
  constructor(bytes: number) {
    super(`a string of ${bytes} bytes`);
    this.bytes = bytes;
  }
}

/** A structural error: the caller adds where it happened. */
export class Malformed extends Error {}

/** Length encodings (rdb.h): the two top bits of the first byte. */
const LEN_6BIT = 0;
const LEN_14BIT = 1;
const LEN_32_OR_64 = 2;
const ENCODED = 3;
const ENC_INT8 = 0;
const ENC_INT16 = 1;
const ENC_INT32 = 2;
const ENC_LZF = 3;
const TWO_32 = 2 ** 32;
const LZF_MAX_EXPANSION = 150;

/**
 * Reads RDB primitives from buf[pos..end): lengths, strings (skipped or decoded), fixed-size fields.
 * Every read checks the bytes are there and throws NEED_MORE otherwise, leaving `pos` meaningless.
 */
export class RdbCursor {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  end = 0;
  /** After NEED_MORE: the buffer index the failed read needed to reach. */
  needed = 0;
  /** Strings longer than this are refused (StringTooLong) before their bytes arrive. */
  maxStringBytes = Number.POSITIVE_INFINITY;

  reset(buf: Buffer, pos: number, end: number): void {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  private need(n: number): void {
    if (this.pos + n > this.end) {
      this.needed = this.pos + n;
      throw NEED_MORE;
    }
  }

  byte(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  uint32LE(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  /** An 8-byte little-endian millisecond time (EXPIRETIME_MS); exact below 2^53. */
  uint64LE(): number {
    this.need(8);
    const v = this.buf.readUInt32LE(this.pos) + this.buf.readUInt32LE(this.pos + 4) * TWO_32;
    this.pos += 8;
    return v;
  }

  /** A length (rdbLoadLen); 64-bit lengths lose precision above 2^53, which counts never reach. */
  length(): number {
    const first = this.byte();
    switch (first >> 6) {
      case LEN_6BIT:
        return first & 0x3f;
      case LEN_14BIT:
        return ((first & 0x3f) << 8) | this.byte();
      case LEN_32_OR_64:
        return this.wideLength(first);
      default:
        throw new Malformed(`an encoded string where a length belongs (0x${first.toString(16)})`);
    }
  }

  /** A length read exactly, for 64-bit ids (module ids). */
  bigLength(): bigint {
    this.need(1);
    if (this.buf[this.pos] === 0x81) {
      this.need(9);
      const v = this.buf.readBigUInt64BE(this.pos + 1);
      this.pos += 9;
      return v;
    }
    return BigInt(this.length());
  }

  private wideLength(first: number): number {
    if (first === 0x80) {
      this.need(4);
      const v = this.buf.readUInt32BE(this.pos);
      this.pos += 4;
      return v;
    }
    if (first === 0x81) {
      this.need(8);
      const v = this.buf.readUInt32BE(this.pos) * TWO_32 + this.buf.readUInt32BE(this.pos + 4);
      this.pos += 8;
      return v;
    }
    throw new Malformed(`an unknown length encoding 0x${first.toString(16)}`);
  }

  /**
   * Reads a string's header only and returns how many bytes of it follow (raw length, the int's width, or
   * LZF's compressed length), for a caller that skips them as they arrive. No limit applies.
   */
  stringBodyLength(): number {
    const first = this.byte();
    if (first >> 6 !== ENCODED) {
      this.pos--;
      return this.length();
    }
    switch (first & 0x3f) {
      case ENC_INT8:
        return 1;
      case ENC_INT16:
        return 2;
      case ENC_INT32:
        return 4;
      case ENC_LZF: {
        const compressed = this.length();
        this.length();
        return compressed;
      }
      default:
        throw new Malformed(`an unknown string encoding 0x${first.toString(16)}`);
    }
  }

  /** Skips a string in any of its encodings (raw, int, LZF). */
  skipString(): void {
    const first = this.byte();
    const kind = first >> 6;
    if (kind !== ENCODED) {
      this.pos--;
      this.skip(this.checkedLength(this.length()));
      return;
    }
    switch (first & 0x3f) {
      case ENC_INT8:
        this.skip(1);
        return;
      case ENC_INT16:
        this.skip(2);
        return;
      case ENC_INT32:
        this.skip(4);
        return;
      case ENC_LZF: {
        const compressed = this.length();
        this.checkedLength(this.length());
        this.skip(this.checkedLength(compressed));
        return;
      }
      default:
        throw new Malformed(`an unknown string encoding 0x${first.toString(16)}`);
    }
  }

  /**
   * A string as string() reads it, but a plain one as a view of the data rather than a copy: for a
   * caller done with it before the data is fed on (a key name copied into a batch).
   */
  stringView(): Buffer {
    if (this.pos < this.end && this.buf[this.pos]! >> 6 !== ENCODED) return this.plainView();
    return this.string();
  }

  /** Reads a string as the bytes it stands for (int-encoded as decimal, LZF decompressed); a copy. */
  string(): Buffer {
    const first = this.byte();
    if (first >> 6 !== ENCODED) {
      this.pos--;
      return Buffer.from(this.plainView());
    }
    switch (first & 0x3f) {
      case ENC_INT8: {
        this.need(1);
        return Buffer.from(String(this.buf.readInt8(this.pos++)));
      }
      case ENC_INT16: {
        this.need(2);
        const v = this.buf.readInt16LE(this.pos);
        this.pos += 2;
        return Buffer.from(String(v));
      }
      case ENC_INT32: {
        this.need(4);
        const v = this.buf.readInt32LE(this.pos);
        this.pos += 4;
        return Buffer.from(String(v));
      }
      case ENC_LZF: {
        const compressed = this.checkedLength(this.length());
        const plain = this.checkedLength(this.length());
        // LZF expands at most ~132x (a 2-byte reference to 264 bytes): a larger claim is a damaged length.
        if (plain > compressed * LZF_MAX_EXPANSION + 64) {
          throw new Malformed(`an LZF string of ${compressed} bytes that claims to expand to ${plain}`);
        }
        this.need(compressed);
        const out = lzfDecompress(this.buf.subarray(this.pos, this.pos + compressed), plain);
        if (!out) throw new Malformed(`an LZF string that does not decompress to ${plain} bytes`);
        this.pos += compressed;
        return out;
      }
      default:
        throw new Malformed(`an unknown string encoding 0x${first.toString(16)}`);
    }
  }

  /** A plain (length-prefixed) string at pos, as a view of the data. */
  private plainView(): Buffer {
    const n = this.checkedLength(this.length());
    this.need(n);
    const s = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /** Skips a double in the old text form (ZSET type 3): a length byte, 253–255 for nan/+inf/-inf. */
  skipTextDouble(): void {
    const len = this.byte();
    if (len < 253) this.skip(len);
  }

  private checkedLength(n: number): number {
    if (n > this.maxStringBytes) throw new StringTooLong(n);
    return n;
  }
}

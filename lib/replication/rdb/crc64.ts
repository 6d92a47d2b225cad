/**
 * CRC-64/Jones as Redis computes it (crc64.c): reflected polynomial 0xad93d23594c935a9, initial value 0, no
 * final xor. It guards both the RDB (the 8 bytes after the EOF opcode) and every DUMP/RESTORE payload.
 * The 64-bit state is kept as two unsigned 32-bit halves: BigInt arithmetic per byte would be far slower.
 */

/** The polynomial 0xad93d23594c935a9 bit-reversed, as Redis's reflected table uses it. */
const POLY_HI = 0x95ac9329;
const POLY_LO = 0xac4bc9b5;

/** Slice-by-8 tables: TABLE_x[k * 256 + b] is the CRC of byte b followed by k zero bytes. */
const TABLE_LO = new Uint32Array(8 * 256);
const TABLE_HI = new Uint32Array(8 * 256);

for (let b = 0; b < 256; b++) {
  let lo = b;
  let hi = 0;
  for (let bit = 0; bit < 8; bit++) {
    const odd = lo & 1;
    lo = ((lo >>> 1) | (hi << 31)) >>> 0;
    hi = hi >>> 1;
    if (odd) {
      lo = (lo ^ POLY_LO) >>> 0;
      hi = (hi ^ POLY_HI) >>> 0;
    }
  }
  TABLE_LO[b] = lo;
  TABLE_HI[b] = hi;
}
for (let k = 1; k < 8; k++) {
  for (let b = 0; b < 256; b++) {
    const lo = TABLE_LO[(k - 1) * 256 + b]!;
    const hi = TABLE_HI[(k - 1) * 256 + b]!;
    const idx = lo & 0xff;
    TABLE_LO[k * 256 + b] = (((lo >>> 8) | (hi << 24)) ^ TABLE_LO[idx]!) >>> 0;
    TABLE_HI[k * 256 + b] = ((hi >>> 8) ^ TABLE_HI[idx]!) >>> 0;
  }
}

/** A running CRC-64 over bytes fed in any number of pieces. */
export class Crc64 {
  private lo = 0;
  private hi = 0;

  update(data: Uint8Array, start = 0, end = data.length): this {
    let lo = this.lo;
    let hi = this.hi;
    let i = start;
    const T_LO = TABLE_LO;
    const T_HI = TABLE_HI;
    // Eight bytes per step: the state is xored with them, then each byte's table gives its contribution.
    for (; i + 8 <= end; i += 8) {
      const a = (lo ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
      const b =
        (hi ^ (data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24))) >>> 0;
      lo =
        T_LO[7 * 256 + (a & 0xff)]! ^
        T_LO[6 * 256 + ((a >>> 8) & 0xff)]! ^
        T_LO[5 * 256 + ((a >>> 16) & 0xff)]! ^
        T_LO[4 * 256 + (a >>> 24)]! ^
        T_LO[3 * 256 + (b & 0xff)]! ^
        T_LO[2 * 256 + ((b >>> 8) & 0xff)]! ^
        T_LO[256 + ((b >>> 16) & 0xff)]! ^
        T_LO[b >>> 24]!;
      hi =
        T_HI[7 * 256 + (a & 0xff)]! ^
        T_HI[6 * 256 + ((a >>> 8) & 0xff)]! ^
        T_HI[5 * 256 + ((a >>> 16) & 0xff)]! ^
        T_HI[4 * 256 + (a >>> 24)]! ^
        T_HI[3 * 256 + (b & 0xff)]! ^
        T_HI[2 * 256 + ((b >>> 8) & 0xff)]! ^
        T_HI[256 + ((b >>> 16) & 0xff)]! ^
        T_HI[b >>> 24]!;
    }
    for (; i < end; i++) {
      const idx = (lo ^ data[i]!) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ T_LO[idx]!;
      hi = (hi >>> 8) ^ T_HI[idx]!;
    }
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
    return this;
  }

  /** The CRC as an unsigned 64-bit number. */
  value(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /** Writes the CRC little endian (as Redis stores it) at out[at..at+8). */
  writeLE(out: Uint8Array, at: number): void {
    const { lo, hi } = this;
    out[at] = lo & 0xff;
    out[at + 1] = (lo >>> 8) & 0xff;
    out[at + 2] = (lo >>> 16) & 0xff;
    out[at + 3] = lo >>> 24;
    out[at + 4] = hi & 0xff;
    out[at + 5] = (hi >>> 8) & 0xff;
    out[at + 6] = (hi >>> 16) & 0xff;
    out[at + 7] = hi >>> 24;
  }

  /** True when the 8 bytes at data[at..] are this CRC little endian. */
  equalsLE(data: Uint8Array, at: number): boolean {
    const lo = (data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24)) >>> 0;
    const hi = (data[at + 4]! | (data[at + 5]! << 8) | (data[at + 6]! << 16) | (data[at + 7]! << 24)) >>> 0;
    return lo === this.lo && hi === this.hi;
  }
}

export function crc64(data: Uint8Array, start = 0, end = data.length): bigint {
  return new Crc64().update(data, start, end).value();
}

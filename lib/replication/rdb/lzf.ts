/**
 * LZF decompression (liblzf's format, which RDB strings use when rdbcompression is on). Only key names and
 * AUX fields are decompressed: values travel compressed as they stand, RESTORE understands them.
 * Returns undefined when the input is not valid LZF of exactly `outLength` bytes.
 */
export function lzfDecompress(input: Uint8Array, outLength: number): Buffer | undefined {
  const out = Buffer.allocUnsafe(outLength);
  let ip = 0;
  let op = 0;
  while (ip < input.length) {
    const ctrl = input[ip++]!;
    if (ctrl < 32) {
      // A literal run of ctrl + 1 bytes.
      const run = ctrl + 1;
      if (ip + run > input.length || op + run > outLength) return undefined;
      out.set(input.subarray(ip, ip + run), op);
      ip += run;
      op += run;
      continue;
    }
    // A back reference: length in the top 3 bits (7 = one more length byte), offset in 13 bits.
    let len = ctrl >>> 5;
    if (len === 7) {
      if (ip >= input.length) return undefined;
      len += input[ip++]!;
    }
    if (ip >= input.length) return undefined;
    let ref = op - ((ctrl & 0x1f) << 8) - 1 - input[ip++]!;
    len += 2;
    if (ref < 0 || op + len > outLength) return undefined;
    // Byte by byte: the reference may overlap the bytes being written.
    for (let i = 0; i < len; i++) out[op++] = out[ref++]!;
  }
  return op === outLength ? out : undefined;
}

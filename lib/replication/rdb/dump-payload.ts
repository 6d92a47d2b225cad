import { Crc64 } from './crc64.ts';

/** The DUMP footer: the RDB version (2 bytes, little endian) and the CRC64 of everything before it. */
export const DUMP_FOOTER_BYTES = 10;

/**
 * A RESTORE payload in Redis's DUMP format (cluster.c createDumpPayload): the leading byte (an RDB value
 * type, or the FUNCTION2 opcode for FUNCTION RESTORE), the serialized bytes src[start..end) as they stand
 * in the RDB, then the footer. The destination checks the CRC and refuses an RDB version newer than its own.
 */
export function dumpPayload(
  lead: number,
  src: Buffer,
  start: number,
  end: number,
  rdbVersion: number,
): Buffer {
  const body = end - start;
  const out = Buffer.allocUnsafe(1 + body + DUMP_FOOTER_BYTES);
  out[0] = lead;
  src.copy(out, 1, start, end);
  out[1 + body] = rdbVersion & 0xff;
  out[2 + body] = rdbVersion >>> 8;
  new Crc64().update(out, 0, 3 + body).writeLE(out, 3 + body);
  return out;
}

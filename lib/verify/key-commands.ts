import type { RawConnection } from '../redis/raw-connection.ts';
import {
  bulkSize,
  type CommandArg,
  copyBytes,
  encodeCommand,
  type RespValue,
  writeBulk,
} from '../redis/resp.ts';

/**
 * Pre-encoded heads of commands whose last argument is the key (`TYPE k`, `MEMORY USAGE k`, `DUMP k`):
 * a batch of thousands of them is written into one Buffer without an allocation per argument.
 */
export function keyCommandHead(...words: string[]): Buffer {
  let s = `*${words.length + 1}\r\n`;
  for (const w of words) s += `$${w.length}\r\n${w}\r\n`;
  return Buffer.from(s, 'latin1');
}

export const HEAD = {
  TYPE: keyCommandHead('TYPE'),
  EXISTS: keyCommandHead('EXISTS'),
  PEXPIRETIME: keyCommandHead('PEXPIRETIME'),
  PTTL: keyCommandHead('PTTL'),
  MEMORY_USAGE: keyCommandHead('MEMORY', 'USAGE'),
  DUMP: keyCommandHead('DUMP'),
  STRLEN: keyCommandHead('STRLEN'),
  LLEN: keyCommandHead('LLEN'),
  SCARD: keyCommandHead('SCARD'),
  ZCARD: keyCommandHead('ZCARD'),
  HLEN: keyCommandHead('HLEN'),
  XLEN: keyCommandHead('XLEN'),
  GET: keyCommandHead('GET'),
  SMEMBERS: keyCommandHead('SMEMBERS'),
  HGETALL: keyCommandHead('HGETALL'),
} as const;

/** For each key in order, every head followed by the key: `heads.length × keys.length` commands. */
export function encodeKeyCommands(heads: readonly Buffer[], keys: readonly Buffer[]): Buffer {
  let size = 0;
  let headBytes = 0;
  for (const h of heads) headBytes += h.length;
  for (const k of keys) size += headBytes + heads.length * bulkSize(k.length);
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const k of keys) {
    for (const h of heads) {
      pos = copyBytes(h, 0, h.length, out, pos);
      pos = writeBulk(out, pos, k);
    }
  }
  return out;
}

/** One command per key, each with its own head (for batches that mix types). */
export function encodeMixedKeyCommands(items: readonly { head: Buffer; key: Buffer }[]): Buffer {
  let size = 0;
  for (const { head, key } of items) size += head.length + bulkSize(key.length);
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const { head, key } of items) {
    pos = copyBytes(head, 0, head.length, out, pos);
    pos = writeBulk(out, pos, key);
  }
  return out;
}

export function encodeAll(commands: readonly (readonly CommandArg[])[]): Buffer {
  return Buffer.concat(commands.map(encodeCommand));
}

/**
 * Writes `count` pre-encoded commands and resolves with their replies in order (error replies as RespError
 * values). `at` receives Date.now() when the last reply arrived: PTTL is turned into an absolute time with it.
 */
export function send(
  conn: RawConnection,
  buf: Buffer,
  count: number,
  at?: { ms: number },
): Promise<RespValue[]> {
  if (count === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    const replies: RespValue[] = new Array(count);
    void conn.write(buf, count, {
      onReply: (v, i) => {
        replies[i] = v;
      },
      onDone: () => {
        if (at) at.ms = Date.now();
        resolve(replies);
      },
      onFail: reject,
    });
  });
}

import { RespError, type RespValue } from '../redis/resp.ts';
import { argBytes } from './copy-key-writer.ts';

/**
 * The command that reads a whole value of each type a chunk reads in its transaction. A stream's
 * XINFO … FULL COUNT 0 holds every entry, group, consumer and pending entry (bounded by the memory
 * budget's probe, as every key of a chunk: bigger ones are copied in parts).
 */
export function wholeRead(type: string, key: Buffer): (string | Buffer)[] | undefined {
  switch (type) {
    case 'string':
      return ['GET', key];
    case 'list':
      return ['LRANGE', key, '0', '-1'];
    case 'set':
      return ['SMEMBERS', key];
    case 'zset':
      return ['ZRANGE', key, '0', '-1', 'WITHSCORES'];
    case 'hash':
      return ['HGETALL', key];
    case 'stream':
      return ['XINFO', 'STREAM', key, 'FULL', 'COUNT', '0'];
    default:
      return undefined;
  }
}

const SET = Buffer.from('SET');
const RPUSH = Buffer.from('RPUSH');
const SADD = Buffer.from('SADD');
const ZADD = Buffer.from('ZADD');
const HSET = Buffer.from('HSET');

/**
 * The commands that rebuild `key` from the reply of its WHOLE_READS command, the same commands the copy
 * in parts writes (copy-key-collections.ts), each under maxCommandBytes except an element larger than
 * that alone. ZRANGE gives every score as the server prints it, which ZADD parses back to the same
 * double (inf and -inf included). Undefined when the reply is not the type's (cannot happen after the
 * TYPE read in the same transaction said so).
 */
export function valueCommands(
  key: Buffer,
  type: string,
  reply: RespValue,
  maxCommandBytes: number,
): Buffer[][] | undefined {
  if (reply instanceof RespError || reply === null) return undefined;
  if (type === 'string') return Buffer.isBuffer(reply) ? [[SET, key, reply]] : undefined;
  if (!Array.isArray(reply) || !reply.every(Buffer.isBuffer)) return undefined;
  const flat = reply as Buffer[];
  switch (type) {
    case 'list':
      return variadic(RPUSH, key, flat, 1, maxCommandBytes);
    case 'set':
      return variadic(SADD, key, flat, 1, maxCommandBytes);
    case 'hash':
      return variadic(HSET, key, flat, 2, maxCommandBytes);
    case 'zset': {
      // ZRANGE answers member, score; ZADD takes score, member.
      const swapped: Buffer[] = new Array(flat.length);
      for (let i = 0; i + 1 < flat.length; i += 2) {
        swapped[i] = flat[i + 1]!;
        swapped[i + 1] = flat[i]!;
      }
      return variadic(ZADD, key, swapped, 2, maxCommandBytes);
    }
    default:
      return undefined;
  }
}

/** `command key items…` split into as few commands as keep each under maxCommandBytes. */
function variadic(command: Buffer, key: Buffer, flat: Buffer[], width: 1 | 2, max: number): Buffer[][] {
  const head = argBytes(command) + argBytes(key);
  const out: Buffer[][] = [];
  let args: Buffer[] = [command, key];
  let bytes = head;
  for (let i = 0; i + width <= flat.length; i += width) {
    let itemBytes = argBytes(flat[i]!);
    if (width === 2) itemBytes += argBytes(flat[i + 1]!);
    if (args.length > 2 && bytes + itemBytes > max) {
      out.push(args);
      args = [command, key];
      bytes = head;
    }
    args.push(flat[i]!);
    if (width === 2) args.push(flat[i + 1]!);
    bytes += itemBytes;
  }
  if (args.length > 2) out.push(args);
  return out;
}

import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';

/**
 * Big values written fast: a string APPENDed from one random MiB (incompressible for DUMP's LZF,
 * whose window is 8 KB, so its payload is as big as the string), collections generated server-side by
 * EVAL in slices of 100,000, so nothing of their size crosses the wire or sits in the test's memory.
 */
export const BIG_VALUES = {
  string: 'big:string',
  set: 'big:set',
  hash: 'big:hash',
  stream: 'big:stream',
  list: 'big:list',
} as const;

export interface BigValueSizes {
  stringBytes?: number;
  setMembers?: number;
  hashFields?: number;
  streamEntries?: number;
  listElements?: number;
}

const MiB = 1024 * 1024;
const SLICE = 100_000;

/** ARGV[1]..ARGV[2] as variadic SADD/HSET of 1,000 elements a call (unpack's stack holds that). */
const VARIADIC = (command: string, item: string) =>
  'local t = {} ' +
  'for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do ' +
  `${item} ` +
  `if #t >= 1000 then redis.call('${command}', KEYS[1], unpack(t)) t = {} end ` +
  'end ' +
  `if #t > 0 then redis.call('${command}', KEYS[1], unpack(t)) end`;

const SCRIPTS = {
  set: VARIADIC('SADD', "t[#t + 1] = 'member:' .. i"),
  hash: VARIADIC('HSET', "t[#t + 1] = 'field:' .. i t[#t + 1] = i * 7"),
  list: VARIADIC('RPUSH', "t[#t + 1] = 'element:' .. i"),
  stream:
    "for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do redis.call('XADD', KEYS[1], '*', 'n', i, 'pad', 'abcdefgh') end",
} as const;

/** Writes the values asked for (absent sizes: not written). */
export async function seedBigValues(url: string, sizes: BigValueSizes): Promise<void> {
  const c = new Redis(url);
  try {
    if (sizes.stringBytes) await appendString(c, BIG_VALUES.string, sizes.stringBytes);
    if (sizes.setMembers) await generate(c, SCRIPTS.set, BIG_VALUES.set, sizes.setMembers);
    if (sizes.hashFields) await generate(c, SCRIPTS.hash, BIG_VALUES.hash, sizes.hashFields);
    if (sizes.streamEntries) await generate(c, SCRIPTS.stream, BIG_VALUES.stream, sizes.streamEntries);
    if (sizes.listElements) await generate(c, SCRIPTS.list, BIG_VALUES.list, sizes.listElements);
  } finally {
    c.disconnect();
  }
}

async function appendString(c: Redis, key: string, bytes: number): Promise<void> {
  const block = noise(MiB);
  let written = 0;
  while (written < bytes) {
    const p = c.pipeline();
    for (let i = 0; i < 16 && written < bytes; i++) {
      const n = Math.min(MiB, bytes - written);
      p.append(key, n === MiB ? block : block.subarray(0, n));
      written += n;
    }
    await p.exec();
  }
}

/** The same incompressible bytes on every call (SHA-256 in counter mode), so two seeds are equal. */
function noise(bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  for (let i = 0, at = 0; at < bytes; i++)
    at += createHash('sha256').update(String(i)).digest().copy(out, at);
  return out;
}

async function generate(c: Redis, script: string, key: string, count: number): Promise<void> {
  for (let from = 1; from <= count; from += SLICE) {
    await c.eval(script, 1, key, from, Math.min(count, from + SLICE - 1));
  }
}

/** A few non-idempotent writes to each big value (APPEND, SADD, HINCRBY, XADD): makes them dirty. */
export async function touchBigValues(url: string, round: number): Promise<void> {
  const c = new Redis(url);
  try {
    await c
      .multi()
      .append(BIG_VALUES.string, `+${round}`)
      .sadd(BIG_VALUES.set, `new:${round}`)
      .hincrby(BIG_VALUES.hash, 'field:1', round)
      .xadd(BIG_VALUES.stream, '*', 'touched', String(round))
      .exec();
  } finally {
    c.disconnect();
  }
}

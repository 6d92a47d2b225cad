import { describe, expect, it } from 'vitest';
import { DtsError } from '../../lib/errors.ts';
import { Crc64, crc64 } from '../../lib/replication/rdb/crc64.ts';
import { lzfDecompress } from '../../lib/replication/rdb/lzf.ts';
import { type RdbEntry, RdbParser, type RdbSummary } from '../../lib/replication/rdb/rdb-parser.ts';

/** Hand-built RDB pieces (rdb.h): lengths, strings, opcodes. */
function len(n: number): number[] {
  if (n < 64) return [n];
  if (n < 16384) return [0x40 | (n >> 8), n & 0xff];
  return [0x80, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}
function str(s: string | Buffer): number[] {
  const b = Buffer.from(s);
  return [...len(b.length), ...b];
}
function rdb(version: number, body: number[] | Buffer, checksum: 'real' | 'zero' = 'real'): Buffer {
  const head = Buffer.concat([
    Buffer.from(`REDIS${String(version).padStart(4, '0')}`),
    Buffer.from(body),
    Buffer.from([0xff]),
  ]);
  const tail = Buffer.alloc(8);
  if (checksum === 'real') tail.writeBigUInt64LE(crc64(head));
  return Buffer.concat([head, tail]);
}
function parse(
  data: Buffer,
  pieceBytes = data.length,
  maxValueBytes?: number,
): { entries: RdbEntry[]; summary: RdbSummary } {
  const entries: RdbEntry[] = [];
  const parser = new RdbParser({ onEntry: (e) => entries.push(e), maxValueBytes });
  for (let i = 0; i < data.length; i += pieceBytes) parser.push(data.subarray(i, i + pieceBytes));
  return { entries, summary: parser.end() };
}
function errorOf(fn: () => unknown): DtsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DtsError);
    return e as DtsError;
  }
  throw new Error('expected a DtsError, nothing was thrown');
}
function moduleId(name: string, version: number): number[] {
  const charset = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let id = 0n;
  for (const ch of name) id = (id << 6n) | BigInt(charset.indexOf(ch));
  id = (id << 10n) | BigInt(version);
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(id);
  return [0x81, ...b];
}

const STRING_VALUE = str('hello world');
const EXPIRE_AT = Date.UTC(2100, 0, 1, 0, 0, 0, 123);
const expireBytes = (() => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(EXPIRE_AT));
  return [...b];
})();
/** "a" then a back reference repeating it 9 times: LZF of ten a's. */
const LZF_TEN_A = [0x00, 0x61, 0xe0, 0x00, 0x00];

const SAMPLE = rdb(11, [
  0xfa,
  ...str('redis-ver'),
  ...str('7.2.6'),
  0xfa,
  ...str('repl-offset'),
  0xc0,
  42,
  0xfe,
  ...len(0),
  0xfb,
  ...len(3),
  ...len(1),
  0x00,
  ...str('plain'),
  ...STRING_VALUE,
  0xfe,
  ...len(7),
  0xfc,
  ...expireBytes,
  0xf8,
  ...len(1000),
  0x00,
  ...str(''),
  ...STRING_VALUE,
  0xf9,
  5,
  0x00,
  0xc1,
  0x39,
  0x30,
  ...str('int-named key'),
  0xf4,
  ...len(12),
  ...len(1),
  ...len(0),
  0x00,
  0xc3,
  ...len(LZF_TEN_A.length),
  ...len(10),
  ...LZF_TEN_A,
  0xc0,
  0xff,
  // A plain hash of 2 fields (type 4) and an old-style zset (type 3) with a text double and +inf.
  0x04,
  ...str('h'),
  ...len(2),
  ...str('f1'),
  ...str('v1'),
  ...str('f2'),
  ...str('v2'),
  0x03,
  ...str('z'),
  ...len(2),
  ...str('m1'),
  3,
  ...Buffer.from('1.5'),
  ...str('m2'),
  254,
  0xf5,
  ...str("#!lua name=lib\nredis.register_function('f', function() return 1 end)"),
]);

describe('CRC64 (Redis crc64.c, Jones polynomial)', () => {
  it('gives Redis\'s own test vector for "123456789"', () => {
    expect(crc64(Buffer.from('123456789'))).toBe(0xe9c6d914c4b8d9can);
  });

  it('is the same fed in pieces of any size as in one go', () => {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 131 + 7) & 0xff));
    for (const piece of [1, 3, 7, 8, 9, 64, 999]) {
      const c = new Crc64();
      for (let i = 0; i < data.length; i += piece) c.update(data, i, Math.min(data.length, i + piece));
      expect(c.value()).toBe(crc64(data));
    }
  });
});

describe('LZF decompression', () => {
  it('expands literals and overlapping back references, and refuses a wrong length', () => {
    expect(lzfDecompress(Buffer.from(LZF_TEN_A), 10)?.toString()).toBe('a'.repeat(10));
    expect(lzfDecompress(Buffer.from(LZF_TEN_A), 11)).toBeUndefined();
    expect(lzfDecompress(Buffer.from([0x00, 0x61, 0x20, 0x05]), 4)).toBeUndefined();
  });
});

describe('RdbParser', () => {
  it('yields every key with its db, expiry and a RESTORE payload, and what AUX says', () => {
    const { entries, summary } = parse(SAMPLE);
    expect(summary).toMatchObject({
      rdbVersion: 11,
      keys: 6,
      functions: 1,
      bytes: SAMPLE.length,
      checksum: 'verified',
    });
    expect(summary.aux).toEqual({ 'redis-ver': '7.2.6', 'repl-offset': '42' });
    expect(summary.serverVersion).toBe('7.2.6');
    const keys = entries.filter((e) => e.kind === 'key');
    expect(keys.map((e) => [e.db, e.key.toString(), e.type, e.expireAtMs])).toEqual([
      [0, 'plain', 0, undefined],
      [7, '', 0, EXPIRE_AT],
      [7, '12345', 0, undefined],
      [7, 'aaaaaaaaaa', 0, undefined],
      [7, 'h', 4, undefined],
      [7, 'z', 3, undefined],
    ]);
    // The payload is the type byte, the value as it stands, RDB version 11 and the CRC64 of all that.
    const first = keys[0]!.payload;
    expect([...first.subarray(0, first.length - 10)]).toEqual([0x00, ...STRING_VALUE]);
    expect(first.readUInt16LE(first.length - 10)).toBe(11);
    for (const e of entries) {
      expect(e.payload.readBigUInt64LE(e.payload.length - 8)).toBe(crc64(e.payload, 0, e.payload.length - 8));
    }
    expect([...keys[3]!.payload.subarray(0, 3)]).toEqual([0x00, 0xc0, 0xff]);
    const fn = entries.find((e) => e.kind === 'function');
    expect(fn?.kind === 'function' && fn.code.toString()).toMatch(/^#!lua name=lib/);
    expect(fn?.payload[0]).toBe(0xf5);
  });

  it('yields the same entries whatever the pieces the RDB arrives in, down to one byte', () => {
    const whole = parse(SAMPLE);
    for (const piece of [1, 2, 5, 13, 64]) {
      const split = parse(SAMPLE, piece);
      expect(split.summary).toEqual(whole.summary);
      expect(split.entries).toEqual(whole.entries);
    }
  });

  it('accepts an RDB written with rdbchecksum no (a zero CRC) and says it was not checked', () => {
    expect(parse(rdb(9, [0x00, ...str('k'), ...STRING_VALUE], 'zero'), 3).summary.checksum).toBe('disabled');
  });

  it('refuses a corrupted byte anywhere with a named error', () => {
    for (let at = 9; at < SAMPLE.length; at++) {
      const bad = Buffer.from(SAMPLE);
      bad[at]! ^= 0x20;
      const err = errorOf(() => parse(bad, 7));
      expect(err.code, `byte ${at}`).toMatch(
        /^RDB_(CHECKSUM|CORRUPT|TRUNCATED|UNSUPPORTED_TYPE|MODULE_TYPE|MODULE_AUX)$/,
      );
      expect(err.fix.length).toBeGreaterThan(10);
    }
  });

  it('refuses an RDB cut short, bytes after its end, and a foreign header', () => {
    expect(errorOf(() => parse(SAMPLE.subarray(0, SAMPLE.length - 3), 4)).code).toBe('RDB_TRUNCATED');
    expect(errorOf(() => parse(Buffer.concat([SAMPLE, Buffer.from([0])]))).code).toBe('RDB_CORRUPT');
    const foreign = Buffer.from(SAMPLE);
    foreign.write('REDIX', 0);
    expect(errorOf(() => parse(foreign)).message).toMatch(/does not start with REDIS/);
  });

  it('refuses an RDB version newer than it knows, naming it', () => {
    const err = errorOf(() => parse(rdb(13, [])));
    expect(err.code).toBe('RDB_VERSION_UNSUPPORTED');
    expect(err.message).toContain('RDB version 13');
  });

  it('refuses module values and module data by the module name', () => {
    const value = errorOf(() => parse(rdb(9, [0x07, ...str('doc'), ...moduleId('ReJSON-RL', 3), 0x00])));
    expect(value.code).toBe('RDB_MODULE_TYPE');
    expect(value.message).toContain("'ReJSON-RL'");
    expect(value.message).toContain('key "doc"');
    const aux = errorOf(() => parse(rdb(9, [0xf7, ...moduleId('MyModule1', 1), ...len(2)])));
    expect(aux.code).toBe('RDB_MODULE_AUX');
    expect(aux.message).toContain("'MyModule1'");
  });

  it("refuses Redis 7.4's hashes with field TTLs by name rather than guess", () => {
    for (const type of [22, 23, 24, 25]) {
      const err = errorOf(() => parse(rdb(12, [type, ...str('hfe'), ...len(1)])));
      expect(err.code).toBe('RDB_UNSUPPORTED_TYPE');
      expect(err.message).toMatch(/field TTLs/);
    }
  });

  it('buffers no more than about twice the largest key, however long the RDB', () => {
    const smallKeys = (from: number) =>
      Buffer.concat(
        Array.from({ length: 50_000 }, (_, i) =>
          Buffer.from([0x00, ...str(`key:${from + i}`), ...str(`value:${i}`.padEnd(40, '.'))]),
        ),
      );
    const big = Buffer.alloc(3_000_000, 'b');
    const body = Buffer.concat([
      smallKeys(0),
      Buffer.from([0x00, ...str('big'), ...len(big.length)]),
      big,
      smallKeys(50_000),
    ]);
    const data = rdb(11, body);
    expect(data.length).toBeGreaterThan(8_000_000);
    const parser = new RdbParser({ onEntry: () => undefined });
    const peaks: number[] = [];
    for (let i = 0; i < data.length; i += 64 * 1024) {
      parser.push(data.subarray(i, i + 64 * 1024));
      peaks.push(parser.peakBufferBytes);
    }
    expect(parser.end().keys).toBe(100_001);
    // Before the big key, a piece's unfinished tail and the next piece; then it doubles to hold the big key.
    expect(peaks[10]).toBeLessThanOrEqual(2 * 64 * 1024);
    expect(parser.peakBufferBytes).toBeGreaterThan(big.length);
    expect(parser.peakBufferBytes).toBeLessThanOrEqual(2 * big.length + 128 * 1024);
  });

  it('refuses a value over the limit before buffering it whole', () => {
    // A string announcing 1 MB is refused on its length alone.
    const header = Buffer.from([...rdb(11, []).subarray(0, 9), 0x00, ...str('big'), ...len(1_000_000)]);
    const parser = new RdbParser({ onEntry: () => undefined, maxValueBytes: 100_000 });
    const err = errorOf(() => parser.push(header));
    expect(err.code).toBe('RDB_VALUE_TOO_LARGE');
    expect(err.message).toContain('key "big"');

    // A hash of many small fields passes the limit in total: refused once that many bytes are pending.
    const fields = Array.from({ length: 20_000 }, (_, i) => [...str(`f${i}`), ...str('v')]).flat();
    const hash = rdb(11, [0x04, ...str('wide'), ...len(20_000), ...fields]);
    const limited = new RdbParser({ onEntry: () => undefined, maxValueBytes: 50_000 });
    let fed = 0;
    const tooLarge = errorOf(() => {
      for (; fed < hash.length; fed += 1000) limited.push(hash.subarray(fed, fed + 1000));
    });
    expect(tooLarge.code).toBe('RDB_VALUE_TOO_LARGE');
    expect(fed).toBeLessThan(hash.length);
    expect(fed).toBeLessThanOrEqual(50_000 + 1000);
  });
});

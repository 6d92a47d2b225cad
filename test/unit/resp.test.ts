import { describe, expect, it } from 'vitest';
import {
  copyBytes,
  decimalLength,
  encodeCommand,
  RespError,
  RespParser,
  type RespValue,
  writeBulk,
  writeDecimal,
} from '../../lib/redis/resp.ts';

const big = Buffer.alloc(200_000, 7);
const STREAM = Buffer.concat([
  Buffer.from('+OK\r\n+QUEUED\r\n+PONG\r\n:42\r\n:-7\r\n$-1\r\n*-1\r\n*0\r\n$0\r\n\r\n'),
  Buffer.from("-NOPERM this user has no permissions to run the 'dump' command\r\n"),
  Buffer.from('*3\r\n$3\r\nfoo\r\n*2\r\n:1\r\n$2\r\n\r\n\r\n-ERR x\r\n'),
  Buffer.from(`$${big.length}\r\n`),
  big,
  Buffer.from('\r\n'),
  Buffer.from('$4\r\n\xff\x00\r\n\r\n', 'latin1'),
]);

function parseAll(chunks: Buffer[]): RespValue[] {
  const out: RespValue[] = [];
  const p = new RespParser((v) => out.push(v));
  for (const c of chunks) p.feed(c);
  expect(p.idle).toBe(true);
  return out;
}

function normalise(v: RespValue): unknown {
  if (Buffer.isBuffer(v)) return { bulk: v.toString('hex') };
  if (v instanceof RespError) return { error: v.message, prefix: v.prefix };
  if (Array.isArray(v)) return v.map(normalise);
  return v;
}

describe('RespParser', () => {
  const whole = parseAll([STREAM]).map(normalise);

  it('parses every reply type in one piece', () => {
    expect(whole.slice(0, 9)).toEqual(['OK', 'QUEUED', 'PONG', 42, -7, null, null, [], { bulk: '' }]);
    expect(whole[9]).toEqual({
      error: "NOPERM this user has no permissions to run the 'dump' command",
      prefix: 'NOPERM',
    });
    expect(whole[10]).toEqual([
      { bulk: Buffer.from('foo').toString('hex') },
      [1, { bulk: '0d0a' }],
      { error: 'ERR x', prefix: 'ERR' },
    ]);
    expect(whole[11]).toEqual({ bulk: big.toString('hex') });
    expect(whole[12]).toEqual({ bulk: 'ff000d0a' });
    expect(whole).toHaveLength(13);
  });

  it('gives the same replies whatever the socket splits (every split point of the small part)', () => {
    const head = STREAM.subarray(0, 200);
    for (let i = 1; i < head.length; i++) {
      const got = parseAll([STREAM.subarray(0, i), STREAM.subarray(i)]).map(normalise);
      expect(got).toEqual(whole);
    }
  });

  it('gives the same replies fed one byte at a time and in random slices', () => {
    const bytes: Buffer[] = [];
    for (let i = 0; i < 300; i++) bytes.push(STREAM.subarray(i, i + 1));
    bytes.push(STREAM.subarray(300));
    expect(parseAll(bytes).map(normalise)).toEqual(whole);
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 20; round++) {
      const parts: Buffer[] = [];
      for (let pos = 0; pos < STREAM.length; ) {
        const n = 1 + Math.floor(rnd() * 70_000);
        parts.push(STREAM.subarray(pos, pos + n));
        pos += n;
      }
      expect(parseAll(parts).map(normalise)).toEqual(whole);
    }
  });

  it('rejects a byte that starts no RESP type', () => {
    const p = new RespParser(() => undefined);
    expect(() => p.feed(Buffer.from('?what\r\n'))).toThrow(/protocol error/);
  });
});

describe('encoding', () => {
  it('encodes commands as arrays of bulk strings, binary-safe', () => {
    expect(encodeCommand(['SET', Buffer.from([0xff, 0]), 12]).toString('latin1')).toBe(
      '*3\r\n$3\r\nSET\r\n$2\r\n\xff\x00\r\n$2\r\n12\r\n',
    );
  });

  it('writes decimals and bulks at a position', () => {
    for (const n of [0, 9, 10, 99, 100, 123456789, 1732000000123]) {
      const out = Buffer.alloc(20);
      const end = writeDecimal(out, 1, n);
      expect(out.toString('latin1', 1, end)).toBe(String(n));
      expect(decimalLength(n)).toBe(String(n).length);
    }
    const src = Buffer.from('0123456789'.repeat(10));
    const out = Buffer.alloc(200);
    const end = writeBulk(out, 0, src, 5, 95);
    expect(out.toString('latin1', 0, end)).toBe(`$90\r\n${src.toString('latin1', 5, 95)}\r\n`);
    expect(copyBytes(src, 0, 3, out, 0)).toBe(3);
  });
});

import { describe, expect, it } from 'vitest';
import { DtsError } from '../../lib/errors.ts';
import { encodeCommand } from '../../lib/redis/resp.ts';
import { CommandStreamParser } from '../../lib/replication/command-stream-parser.ts';
import { RdbPayloadReader } from '../../lib/replication/rdb-payload-reader.ts';

const START = 1000;

interface Seen {
  argv: string[];
  end: number;
}

/** Pieces of a replication stream: commands, plus the no-op forms a replica accepts. */
const PIECES: { bytes: Buffer; argv?: (string | Buffer)[] }[] = [
  cmd('SELECT', '0'),
  cmd('SET', 'k', 'v'),
  cmd('MULTI'),
  cmd('INCR', 'counter'),
  cmd('RPUSH', 'list', Buffer.from('a\r\nb\r\n'), ''),
  cmd('EXEC'),
  { bytes: Buffer.from('\n') },
  cmd('PING'),
  { bytes: Buffer.from('\r\n') },
  { bytes: Buffer.from('*0\r\n') },
  cmd('REPLCONF', 'GETACK', '*'),
  cmd('SET', Buffer.from([0, 255, 13, 10, 36]), Buffer.alloc(300, 0x2a)),
  { bytes: Buffer.from('*-1\r\n') },
  cmd('DEL', 'k'),
];

function cmd(...argv: (string | Buffer)[]): { bytes: Buffer; argv: (string | Buffer)[] } {
  return { bytes: encodeCommand(argv), argv };
}

function build(pieces: typeof PIECES, start: number): { stream: Buffer; expected: Seen[] } {
  const expected: Seen[] = [];
  let offset = start;
  for (const p of pieces) {
    offset += p.bytes.length;
    if (p.argv) expected.push({ argv: p.argv.map((a) => Buffer.from(a).toString('hex')), end: offset });
  }
  return { stream: Buffer.concat(pieces.map((p) => p.bytes)), expected };
}

function collector(start = START): { parser: CommandStreamParser; seen: Seen[] } {
  const seen: Seen[] = [];
  const parser = new CommandStreamParser(start, (argv, end) => {
    seen.push({ argv: argv.map((a) => a.toString('hex')), end });
    return undefined;
  });
  return { parser, seen };
}

describe('CommandStreamParser', () => {
  const { stream, expected } = build(PIECES, START);

  it('gives every command its argv and the offset of its last byte', () => {
    const { parser, seen } = collector();
    expect(parser.feed(stream)).toBe(stream.length);
    expect(seen).toEqual(expected);
    expect(parser.offset).toBe(START + stream.length);
    expect(parser.commandOffset).toBe(START + stream.length);
    expect(parser.idle).toBe(true);
    // Offsets: the first byte after the start offset is START + 1, so `SELECT 0` ends at START + its length.
    expect(seen[0]!.end).toBe(START + encodeCommand(['SELECT', '0']).length);
  });

  it('gives the same result whatever byte the stream is split at', () => {
    for (let i = 0; i <= stream.length; i++) {
      const { parser, seen } = collector();
      parser.feed(stream.subarray(0, i));
      expect(parser.offset).toBe(START + i);
      parser.feed(stream.subarray(i));
      expect(seen, `split at ${i}`).toEqual(expected);
      expect(parser.idle).toBe(true);
    }
  });

  it('gives the same result fed one byte at a time, and reports partial progress', () => {
    const { parser, seen } = collector();
    for (let i = 0; i < stream.length; i++) {
      parser.feed(stream.subarray(i, i + 1));
      expect(parser.offset).toBe(START + i + 1);
      // commandOffset never runs ahead of a complete command.
      const done = seen.at(-1)?.end ?? START;
      expect(parser.commandOffset).toBeGreaterThanOrEqual(done);
    }
    expect(seen).toEqual(expected);
  });

  it('splits a large value at every boundary region without losing or duplicating bytes', () => {
    const big = Buffer.alloc(200_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const { stream: s, expected: e } = build([cmd('SET', 'big', big), cmd('PING')], 0);
    const cuts = [
      1,
      5,
      20,
      23,
      24,
      25,
      1000,
      65_536,
      s.length - 17,
      s.length - 16,
      s.length - 15,
      s.length - 1,
    ];
    for (const cut of cuts) {
      const { parser, seen } = collector(0);
      parser.feed(s.subarray(0, cut));
      parser.feed(s.subarray(cut, cut + 70_000));
      parser.feed(s.subarray(cut + 70_000));
      expect(seen, `cut at ${cut}`).toEqual(e);
    }
  });

  it('stops after a command whose handler returns false, and resumes exactly there', () => {
    const seen: Seen[] = [];
    const parser = new CommandStreamParser(START, (argv, end) => {
      seen.push({ argv: argv.map((a) => a.toString('hex')), end });
      return false;
    });
    let pos = 0;
    let feeds = 0;
    while (pos < stream.length) {
      const next = parser.feed(stream, pos);
      if (next < stream.length) {
        // Stopped right after the command just delivered: its end offset is where parsing stopped.
        expect(START + next).toBe(seen.at(-1)!.end);
        expect(parser.offset).toBe(START + next);
      }
      pos = next;
      feeds++;
    }
    expect(seen).toEqual(expected);
    expect(feeds).toBe(expected.length);
  });

  it('hands out views of the received chunk for arguments that arrive whole', () => {
    const data = encodeCommand(['SET', 'key', 'value']);
    let argv: Buffer[] = [];
    new CommandStreamParser(0, (a) => {
      argv = a;
      return undefined;
    }).feed(data);
    expect(argv.map(String)).toEqual(['SET', 'key', 'value']);
    expect(argv[2]!.buffer).toBe(data.buffer);
  });

  it('reports malformed input as a DtsError naming the offset', () => {
    const cases: [string, RegExp][] = [
      ['SET k v\r\n', /offset 11: expected '\*', got 'S'/],
      ['*1\r\n+OK\r\n', /offset 15: expected '\$', got '\+'/],
      ['*x\r\n', /offset 12: bad length byte 'x'/],
      ['*1\r\n$3\r\nabcd\r\n', /offset 22: expected CR, got 'd'/],
      ['*1\r\n$-1\r\n', /negative bulk length/],
      ['*1\r\n$99999999999999999\r\n', /length too long/],
    ];
    for (const [input, message] of cases) {
      const parser = new CommandStreamParser(10, () => undefined);
      let err: unknown;
      try {
        parser.feed(Buffer.from(input));
      } catch (e) {
        err = e;
      }
      expect(err, input).toBeInstanceOf(DtsError);
      expect((err as DtsError).code).toBe('REPLICATION_PROTOCOL');
      expect((err as DtsError).message).toMatch(message);
    }
  });
});

describe('RdbPayloadReader', () => {
  const MARK = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
  const tail = encodeCommand(['SELECT', '0']);

  function drain(
    header: string,
    chunks: Buffer[],
  ): { payload: Buffer; rest: Buffer; reader: RdbPayloadReader } {
    const got: Buffer[] = [];
    const reader = new RdbPayloadReader(header, (c) => got.push(Buffer.from(c)));
    const rest: Buffer[] = [];
    for (const c of chunks) {
      const used = reader.feed(c);
      rest.push(c.subarray(used));
      if (!reader.done) expect(used).toBe(c.length);
    }
    return { payload: Buffer.concat(got), rest: Buffer.concat(rest), reader };
  }

  it('reads exactly the announced length and leaves the stream that follows in the same chunk', () => {
    const payload = Buffer.from('REDIS0010\xfa\x09redis-ver\x057.0.0\xff0123456\r\n', 'latin1');
    const wire = Buffer.concat([payload, tail]);
    for (let i = 0; i <= wire.length; i++) {
      const r = drain(`$${payload.length}`, [wire.subarray(0, i), wire.subarray(i)]);
      expect(r.reader.done).toBe(true);
      expect(r.reader.diskless).toBe(false);
      expect(r.payload.equals(payload), `split at ${i}`).toBe(true);
      expect(r.rest.equals(tail)).toBe(true);
      expect(r.reader.bytes).toBe(payload.length);
    }
  });

  it('finds the diskless end mark wherever the chunks split, even after partial look-alikes', () => {
    // The payload holds prefixes of the mark, so a naive "last bytes" check or a reset-on-mismatch
    // scanner would go wrong.
    const payload = Buffer.concat([
      Buffer.from('REDIS0010'),
      Buffer.from(MARK.slice(0, 39)),
      Buffer.from('x'),
      Buffer.from(MARK.slice(0, 20)),
      Buffer.alloc(100, 0xfe),
      Buffer.from(MARK.slice(0, 1)),
    ]);
    const wire = Buffer.concat([payload, Buffer.from(MARK), tail]);
    for (let i = 0; i <= wire.length; i++) {
      for (const j of [i, i + 1, i + 7, i + 39, i + 40, i + 41, wire.length]) {
        const b = Math.min(j, wire.length);
        const r = drain(`$EOF:${MARK}`, [wire.subarray(0, i), wire.subarray(i, b), wire.subarray(b)]);
        expect(r.reader.done, `split at ${i}/${b}`).toBe(true);
        expect(r.reader.diskless).toBe(true);
        expect(r.payload.equals(payload), `split at ${i}/${b}`).toBe(true);
        expect(r.rest.equals(tail), `split at ${i}/${b}`).toBe(true);
      }
    }
  });

  it('passes a diskless payload on as it arrives, holding back less than a mark', () => {
    const got: number[] = [];
    const reader = new RdbPayloadReader(`$EOF:${MARK}`, (c) => got.push(c.length));
    reader.feed(Buffer.alloc(100_000, 1));
    expect(reader.bytes).toBe(100_000 - 39);
    reader.feed(Buffer.from(MARK));
    expect(reader.done).toBe(true);
    expect(reader.bytes).toBe(100_000);
  });

  it('rejects headers that are neither framing', () => {
    for (const h of ['$abc', '+OK', '$EOF:short', '$-1']) {
      expect(() => new RdbPayloadReader(h, () => undefined), h).toThrow(DtsError);
    }
  });
});

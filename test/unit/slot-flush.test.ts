import { describe, expect, it } from 'vitest';
import { commandBytes } from '../../lib/incremental/command-router.ts';
import { slotsOf } from '../../lib/incremental/slot-flush.ts';
import { encodeCommand } from '../../lib/redis/resp.ts';
import { CommandStreamParser } from '../../lib/replication/command-stream-parser.ts';

describe('commandBytes: where a flush starts in the stream (its marker goes there)', () => {
  it('is the distance from the end of the command before it to its own end, as the parser counts', () => {
    const commands: Buffer[][] = [
      [Buffer.from('SELECT'), Buffer.from('0')],
      [Buffer.from('SET'), Buffer.from('k'), Buffer.alloc(12_345, 0x61)],
      [Buffer.from('FLUSHALL')],
      [Buffer.from('FLUSHDB'), Buffer.from('ASYNC')],
      Array.from({ length: 11 }, (_, i) => Buffer.from(`arg${i}`)),
      [Buffer.from('SET'), Buffer.from([0, 13, 10]), Buffer.alloc(0)],
    ];
    const ends: number[] = [];
    const parser = new CommandStreamParser(500, (_argv, end) => {
      ends.push(end);
      return undefined;
    });
    parser.feed(Buffer.concat(commands.map((argv) => encodeCommand(argv))));
    let before = 500;
    commands.forEach((argv, i) => {
      expect(ends[i]! - commandBytes(argv)).toBe(before);
      before = ends[i]!;
    });
  });
});

describe('slotsOf', () => {
  it('marks every slot of the ranges once', () => {
    const s = slotsOf('slots0-5460', [
      [0, 5460],
      [16000, 16383],
    ]);
    expect(s.count).toBe(5461 + 384);
    expect([s.mask[0], s.mask[5460], s.mask[5461], s.mask[15999], s.mask[16000], s.mask[16383]]).toEqual([
      1, 1, 0, 0, 1, 1,
    ]);
  });
});

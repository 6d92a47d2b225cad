import { describe, expect, it } from 'vitest';
import { carriesRelativeExpiry, toAbsoluteExpiry } from '../../lib/commands/absolute-expiry.ts';

const AT = 1_800_000_000_123;
const argv = (...words: string[]) => words.map((w) => Buffer.from(w));
const text = (cmds: Buffer[][] | undefined) => cmds?.map((c) => c.map((a) => a.toString()).join(' '));

describe('relative expiries of a pre-7.0 stream made absolute', () => {
  it.each([
    [['EXPIRE', 'k', '100'], [`PEXPIREAT k ${AT + 100_000}`]],
    [['pexpire', 'k', '250'], [`PEXPIREAT k ${AT + 250}`]],
    [
      ['SETEX', 'k', '10', 'v'],
      ['SET k v', `PEXPIREAT k ${AT + 10_000}`],
    ],
    [
      ['PSETEX', 'k', '10', 'v'],
      ['SET k v', `PEXPIREAT k ${AT + 10}`],
    ],
    // 6.2's own propagation of SET … EX, and 6.0's, which keeps every option as the client gave it.
    [
      ['SET', 'k', 'v', 'PX', '600000'],
      ['SET k v', `PEXPIREAT k ${AT + 600_000}`],
    ],
    [
      ['set', 'k', 'v', 'nx', 'ex', '5'],
      ['SET k v nx', `PEXPIREAT k ${AT + 5000}`],
    ],
    [
      ['SET', 'k', 'v', 'EX', '5', 'XX'],
      ['SET k v XX', `PEXPIREAT k ${AT + 5000}`],
    ],
    [['GETEX', 'k', 'PX', '30'], [`PEXPIREAT k ${AT + 30}`]],
    [['RESTORE', 'k', '5000', 'payload', 'REPLACE'], [`RESTORE k ${AT + 5000} payload REPLACE ABSTTL`]],
    [['RESTORE-ASKING', 'k', '7', 'payload'], [`RESTORE-ASKING k ${AT + 7} payload ABSTTL`]],
  ])('%j', (command, expected) => {
    expect(carriesRelativeExpiry(argv(...command))).toBe(true);
    expect(text(toAbsoluteExpiry(argv(...command), AT))).toEqual(expected);
  });

  it.each([
    ['PEXPIREAT', 'k', '123'],
    ['EXPIREAT', 'k', '123'],
    ['SET', 'k', 'v'],
    ['SET', 'k', 'v', 'PXAT', '123'],
    ['SET', 'k', 'v', 'KEEPTTL'],
    ['GETEX', 'k', 'PERSIST'],
    ['GETEX', 'k', 'EXAT', '123'],
    ['RESTORE', 'k', '0', 'payload'],
    ['RESTORE', 'k', '123', 'payload', 'ABSTTL'],
    ['SETNX', 'k', 'v'],
    ['INCR', 'k'],
  ])('%j is replayed as it is', (...command) => {
    expect(carriesRelativeExpiry(argv(...command))).toBe(false);
    expect(toAbsoluteExpiry(argv(...command), AT)).toBeUndefined();
  });

  it('keeps binary keys and values byte for byte', () => {
    const key = Buffer.from([0xff, 0x00, 0x0a]);
    const value = Buffer.from([0x00, 0xfe]);
    const out = toAbsoluteExpiry([Buffer.from('SETEX'), key, Buffer.from('1'), value], AT)!;
    expect(out[0]![1]!.equals(key) && out[0]![2]!.equals(value) && out[1]![1]!.equals(key)).toBe(true);
  });
});

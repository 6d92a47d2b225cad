import { describe, expect, it } from 'vitest';
import { splitBySlot } from '../../lib/incremental/slot-split.ts';
import { keySlot } from '../../lib/redis/cluster-slot.ts';

const argv = (...a: string[]) => a.map((s) => Buffer.from(s));
const text = (parts: { slot: number; argv: Buffer[] }[] | undefined) =>
  parts?.map((p) => ({ slot: p.slot, argv: p.argv.map((b) => b.toString()) }));

describe('splitBySlot', () => {
  it('splits DEL and UNLINK into one command per slot, keys in their order', () => {
    const parts = text(splitBySlot(argv('DEL', 'a', '{a}x', 'b', '{b}y')));
    expect(parts).toEqual([
      { slot: keySlot('a'), argv: ['DEL', 'a', '{a}x'] },
      { slot: keySlot('b'), argv: ['DEL', 'b', '{b}y'] },
    ]);
    expect(text(splitBySlot(argv('unlink', 'a', 'b')))?.map((p) => p.argv)).toEqual([
      ['unlink', 'a'],
      ['unlink', 'b'],
    ]);
  });

  it('splits MSET and a propagated MSETNX into MSET pairs per slot; a repeated key keeps its last value', () => {
    const parts = text(splitBySlot(argv('MSETNX', 'a', '1', 'b', '2', 'a', '3')));
    expect(parts).toEqual([
      { slot: keySlot('a'), argv: ['MSET', 'a', '1', 'a', '3'] },
      { slot: keySlot('b'), argv: ['MSET', 'b', '2'] },
    ]);
  });

  it('refuses commands whose meaning a split would change', () => {
    for (const c of [
      argv('RENAME', 'a', 'b'),
      argv('SUNIONSTORE', 'd', 'a', 'b'),
      argv('MSET', 'a', '1', 'b'),
    ]) {
      expect(splitBySlot(c)).toBeUndefined();
    }
  });
});

import type { RdbCursor } from './rdb-cursor.ts';
import { TYPE } from './rdb-format.ts';

/**
 * A value's serialized structure as the drain walks it: strings (skipped as their bytes arrive), lengths,
 * fixed-size fields, text doubles, and counted repetitions of a body (the count read from the RDB).
 */
type Op =
  | { t: 'string' }
  | { t: 'length' }
  | { t: 'skip'; n: number }
  | { t: 'textDouble' }
  | { t: 'repeat'; body: readonly Op[] };

const STRING: Op = { t: 'string' };
const LENGTH: Op = { t: 'length' };
const skip = (n: number): Op => ({ t: 'skip', n });
const repeat = (...body: Op[]): Op => ({ t: 'repeat', body });
const lengths = (n: number): Op[] => Array.from({ length: n }, () => LENGTH);

/** Stream IDs in a PEL are 16 raw bytes; times are 8-byte milliseconds (as value-skipper.ts reads them). */
function streamLayout(version: 1 | 2 | 3): Op[] {
  const consumerTimes = version === 3 ? 16 : 8;
  return [
    repeat(STRING, STRING), // listpack nodes: master ID, listpack
    ...lengths(version === 1 ? 3 : 8), // length, last ID (and first ID, max deleted ID, entries added)
    repeat(
      STRING, // group name
      LENGTH, // last delivered ID ms
      LENGTH, // and seq
      ...(version === 1 ? [] : [LENGTH]), // entries read
      repeat(skip(24), LENGTH), // PEL: ID and delivery time, delivery count
      repeat(STRING, skip(consumerTimes), repeat(skip(16))), // consumers: name, times, their PEL IDs
    ),
  ];
}

const ONE_STRING: readonly Op[] = [STRING];
const LAYOUTS = new Map<number, readonly Op[]>([
  [TYPE.STRING, ONE_STRING],
  [TYPE.HASH_ZIPMAP, ONE_STRING],
  [TYPE.LIST_ZIPLIST, ONE_STRING],
  [TYPE.SET_INTSET, ONE_STRING],
  [TYPE.ZSET_ZIPLIST, ONE_STRING],
  [TYPE.HASH_ZIPLIST, ONE_STRING],
  [TYPE.HASH_LISTPACK, ONE_STRING],
  [TYPE.ZSET_LISTPACK, ONE_STRING],
  [TYPE.SET_LISTPACK, ONE_STRING],
  [TYPE.LIST, [repeat(STRING)]],
  [TYPE.SET, [repeat(STRING)]],
  [TYPE.LIST_QUICKLIST, [repeat(STRING)]],
  [TYPE.LIST_QUICKLIST_2, [repeat(LENGTH, STRING)]], // per node: container kind, then its string
  [TYPE.ZSET, [repeat(STRING, { t: 'textDouble' })]],
  [TYPE.ZSET_2, [repeat(STRING, skip(8))]],
  [TYPE.HASH, [repeat(STRING, STRING)]],
  [TYPE.STREAM_LISTPACKS, streamLayout(1)],
  [TYPE.STREAM_LISTPACKS_2, streamLayout(2)],
  [TYPE.STREAM_LISTPACKS_3, streamLayout(3)],
]);

interface Frame {
  ops: readonly Op[];
  i: number;
  /** Passes over `ops` still to make, this one included. */
  left: number;
}

/**
 * Walks over one value too large to hold, as its bytes arrive, keeping only where it is (a stack of
 * counted repetitions and the bytes of the current string left): a key whose value exceeds the memory
 * budget is then copied from the source in parts, at a stamp, instead of being buffered whole
 * (value-skipper.ts walks a value that is all in memory; this one never needs more than a field at once).
 * Module values have no layout here: they stay refused.
 */
export class ValueDrain {
  private readonly stack: Frame[];
  private raw = 0;

  private constructor(layout: readonly Op[]) {
    this.stack = [{ ops: layout, i: 0, left: 1 }];
  }

  static for(type: number): ValueDrain | undefined {
    const layout = LAYOUTS.get(type);
    return layout ? new ValueDrain(layout) : undefined;
  }

  /**
   * One step: skips what is there of the current string, or reads one count, header or fixed field (a
   * NEED_MORE then leaves the state as it was). True once the value is behind the cursor.
   */
  step(c: RdbCursor): boolean {
    if (this.raw > 0) {
      const take = Math.min(this.raw, c.end - c.pos);
      c.pos += take;
      this.raw -= take;
      if (this.raw === 0) this.next();
      return this.stack.length === 0;
    }
    const top = this.stack[this.stack.length - 1]!;
    if (top.i === top.ops.length) {
      if (--top.left > 0) top.i = 0;
      else this.stack.pop();
      return this.stack.length === 0;
    }
    const op = top.ops[top.i]!;
    switch (op.t) {
      case 'string': {
        const n = c.stringBodyLength();
        if (n === 0) this.next();
        else this.raw = n;
        break;
      }
      case 'length':
        c.length();
        this.next();
        break;
      case 'skip':
        c.skip(op.n);
        this.next();
        break;
      case 'textDouble':
        c.skipTextDouble();
        this.next();
        break;
      case 'repeat': {
        const count = c.length();
        this.next();
        if (count > 0) this.stack.push({ ops: op.body, i: 0, left: count });
        break;
      }
    }
    return false;
  }

  private next(): void {
    this.stack[this.stack.length - 1]!.i++;
  }
}

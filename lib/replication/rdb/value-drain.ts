import type { RdbCursor } from './rdb-cursor.ts';
import { TYPE } from './rdb-format.ts';

type Field = 'string' | 'length' | 'double8' | 'textDouble';

/** A value's outer structure: one string, or a count of elements made of these fields. */
interface Layout {
  counted: boolean;
  fields: readonly Field[];
}

const ONE_STRING: Layout = { counted: false, fields: ['string'] };
const LAYOUTS = new Map<number, Layout>([
  [TYPE.STRING, ONE_STRING],
  [TYPE.HASH_ZIPMAP, ONE_STRING],
  [TYPE.LIST_ZIPLIST, ONE_STRING],
  [TYPE.SET_INTSET, ONE_STRING],
  [TYPE.ZSET_ZIPLIST, ONE_STRING],
  [TYPE.HASH_ZIPLIST, ONE_STRING],
  [TYPE.HASH_LISTPACK, ONE_STRING],
  [TYPE.ZSET_LISTPACK, ONE_STRING],
  [TYPE.SET_LISTPACK, ONE_STRING],
  [TYPE.LIST, { counted: true, fields: ['string'] }],
  [TYPE.SET, { counted: true, fields: ['string'] }],
  [TYPE.LIST_QUICKLIST, { counted: true, fields: ['string'] }],
  [TYPE.LIST_QUICKLIST_2, { counted: true, fields: ['length', 'string'] }],
  [TYPE.ZSET, { counted: true, fields: ['string', 'textDouble'] }],
  [TYPE.ZSET_2, { counted: true, fields: ['string', 'double8'] }],
  [TYPE.HASH, { counted: true, fields: ['string', 'string'] }],
]);

/**
 * Walks over one value too large to hold, as its bytes arrive, keeping only where it is (elements left,
 * the field, the bytes of the current string left): a key whose value exceeds the memory budget is then
 * copied from the source in parts, at a stamp, instead of being buffered whole (value-skipper.ts walks a
 * value that is all in memory; this one never needs more than a length's bytes at once).
 * Streams and module values have no such outer layout here: they stay refused by size.
 */
export class ValueDrain {
  private readonly layout: Layout;
  private remaining: number | undefined;
  private field = 0;
  private raw = 0;

  private constructor(layout: Layout) {
    this.layout = layout;
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
      if (this.raw === 0) this.nextField();
      return this.remaining === 0;
    }
    if (this.remaining === undefined) {
      this.remaining = this.layout.counted ? c.length() : 1;
      return this.remaining === 0;
    }
    switch (this.layout.fields[this.field]!) {
      case 'string': {
        const n = c.stringBodyLength();
        if (n === 0) this.nextField();
        else this.raw = n;
        break;
      }
      case 'length':
        c.length();
        this.nextField();
        break;
      case 'double8':
        c.skip(8);
        this.nextField();
        break;
      case 'textDouble':
        c.skipTextDouble();
        this.nextField();
        break;
    }
    return this.remaining === 0;
  }

  private nextField(): void {
    this.field++;
    if (this.field < this.layout.fields.length) return;
    this.field = 0;
    this.remaining = (this.remaining ?? 1) - 1;
  }
}

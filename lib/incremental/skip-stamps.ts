import { DtsError } from '../errors.ts';

/**
 * Keys whose state was copied from the source at a stamp (ARCHITECTURE.md, "Exactness" point 4): the
 * stream's commands on such a key up to that offset are already in the copy and must be skipped.
 * Entries are per source db; the destination keeps the same entries in the marker's skip hash, written
 * in the transaction of each re-copy, so a restart from the marker skips exactly the same commands.
 */
export class SkipStamps {
  private readonly stamps = new Map<string, number>();
  /** Largest stamp held: once the stream is past it, every entry is spent. */
  maxStamp = -1;

  /** Hash field of a key: `<db>:<key bytes>`. */
  static field(db: number, key: Buffer): Buffer {
    return Buffer.concat([Buffer.from(`${db}:`), key]);
  }

  /** The key bytes of a field `field` made (a view, no copy). */
  static keyOf(field: Buffer): Buffer {
    return field.subarray(field.indexOf(COLON) + 1);
  }

  set(db: number, key: Buffer, stamp: number): void {
    this.stamps.set(id(db, key), stamp);
    if (stamp > this.maxStamp) this.maxStamp = stamp;
  }

  /** True when the command ending at `end` is already part of the key's copied state. */
  covers(db: number, key: Buffer, end: number): boolean {
    if (end > this.maxStamp) return false;
    const s = this.stamps.get(id(db, key));
    return s !== undefined && end <= s;
  }

  /** Keys whose copy is ahead of `end` (their stamp is at or past it), in `dbs` or in any db. */
  ahead(end: number, dbs?: readonly number[]): { db: number; key: Buffer }[] {
    if (end > this.maxStamp) return [];
    const out: { db: number; key: Buffer }[] = [];
    for (const [k, s] of this.stamps) {
      if (s < end) continue;
      const colon = k.indexOf(':');
      const db = Number(k.slice(0, colon));
      if (!dbs || dbs.includes(db)) out.push({ db, key: Buffer.from(k.slice(colon + 1), 'latin1') });
    }
    return out;
  }

  /** Forgets every entry when the stream has passed them all; true if it did. */
  expire(end: number): boolean {
    if (this.stamps.size === 0 || end <= this.maxStamp) return false;
    this.stamps.clear();
    this.maxStamp = -1;
    return true;
  }

  get size(): number {
    return this.stamps.size;
  }

  /** Loads the destination's skip hash (HGETALL reply: field, value, …). */
  load(entries: readonly Buffer[]): void {
    for (let i = 0; i + 1 < entries.length; i += 2) {
      const field = entries[i]!;
      const colon = field.indexOf(COLON);
      const db = Number(field.subarray(0, colon).toString('latin1'));
      const stamp = Number(entries[i + 1]!.toString('latin1'));
      if (colon <= 0 || !Number.isInteger(db) || !Number.isSafeInteger(stamp)) {
        throw new DtsError(
          'BAD_MARKER',
          `the destination's skip hash holds an entry that is not <db>:<key> → <offset> (${JSON.stringify(field.toString('latin1').slice(0, 60))})`,
          'something other than redis-dts wrote it: run the task again with a fresh full sync',
        );
      }
      this.set(db, SkipStamps.keyOf(field), stamp);
    }
  }
}

const COLON = 0x3a;

function id(db: number, key: Buffer): string {
  return `${db}:${key.toString('latin1')}`;
}

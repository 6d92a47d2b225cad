/**
 * Keys written on the source while the full sync was copying (stream offsets up to the catch-up bound),
 * and dbs changed as a whole there (FLUSHDB, FLUSHALL, SWAPDB): what the catch-up copies again.
 * Keys are held as latin1 strings, which map bytes one to one, so any binary key round-trips.
 */
export class DirtySet {
  private readonly keysByDb = new Map<number, Set<string>>();
  private readonly wholeDbs = new Set<number>();

  addKey(db: number, key: Buffer): void {
    if (this.wholeDbs.has(db)) return;
    let set = this.keysByDb.get(db);
    if (!set) {
      set = new Set();
      this.keysByDb.set(db, set);
    }
    set.add(key.toString('latin1'));
  }

  /** The whole db is copied again: its single keys no longer need to be. */
  addDb(db: number): void {
    this.wholeDbs.add(db);
    this.keysByDb.delete(db);
  }

  /** Dbs to copy again, and forgets them. */
  takeDbs(): number[] {
    const dbs = [...this.wholeDbs].sort((a, b) => a - b);
    this.wholeDbs.clear();
    return dbs;
  }

  /** Keys to copy again, per db, and forgets them. */
  takeKeys(): Map<number, Buffer[]> {
    const out = new Map<number, Buffer[]>();
    for (const [db, set] of this.keysByDb)
      out.set(
        db,
        [...set].map((k) => Buffer.from(k, 'latin1')),
      );
    this.keysByDb.clear();
    return out;
  }

  /** Dbs holding dirty keys. */
  keyDbs(): number[] {
    return [...this.keysByDb.keys()];
  }
}

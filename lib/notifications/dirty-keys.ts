/** A key to copy again, and when it was first marked (for the lag figure). */
export interface DirtyKey {
  db: number;
  key: Buffer;
  markedAt: number;
}

/**
 * The keys changed on the source and not yet copied again, each once however often it changed (a key is
 * copied at its current value, so one copy covers every event before the read). Bounded: past `max`
 * keys a mark is dropped and counted, and the owner must repair (a compare-and-copy round) to find them.
 */
export class DirtyKeys {
  private readonly max: number;
  private entries = new Map<string, DirtyKey>();
  /** Marks dropped because the set was full, since the last takeDropped(). */
  private dropped = 0;

  constructor(max = 1_000_000) {
    this.max = max;
  }

  get size(): number {
    return this.entries.size;
  }

  /** When the key waiting longest was marked (Date.now() ms); undefined when none waits. */
  get oldestMarkedAt(): number | undefined {
    const first = this.entries.values().next();
    return first.done ? undefined : first.value.markedAt;
  }

  get full(): boolean {
    return this.entries.size >= this.max;
  }

  /** Marks a key; `key` may be a view into a socket buffer (it is copied when kept). */
  mark(db: number, key: Buffer, now = Date.now()): void {
    const id = `${db}:${key.toString('latin1')}`;
    if (this.entries.has(id)) return;
    if (this.entries.size >= this.max) {
      this.dropped++;
      return;
    }
    this.entries.set(id, { db, key: Buffer.from(key), markedAt: now });
  }

  /**
   * Takes up to `limit` keys of one db (the oldest marked first), removing them, so that an event after
   * this call marks the key again and it is copied once more: a key is never lost between a take and
   * its read.
   */
  take(limit: number): { db: number; keys: DirtyKey[] } | undefined {
    const first = this.entries.values().next();
    if (first.done) return undefined;
    const db = first.value.db;
    const keys: DirtyKey[] = [];
    for (const [id, entry] of this.entries) {
      if (entry.db !== db) continue;
      keys.push(entry);
      this.entries.delete(id);
      if (keys.length >= limit) break;
    }
    return { db, keys };
  }

  /** Marks dropped since the last call (a full set). */
  takeDropped(): number {
    const n = this.dropped;
    this.dropped = 0;
    return n;
  }
}

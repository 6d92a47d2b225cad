/** A key to copy again, and when it was first marked (for the lag figure). */
export interface DirtyKey {
  db: number;
  key: Buffer;
  markedAt: number;
}

/** A mark as kept: the key as a latin1 string (its id in the set too), so marking copies no bytes. */
interface Mark {
  key: string;
  markedAt: number;
}

/** One db's marks in marking order; `head` is the next to take (the array is compacted now and then). */
interface DbQueue {
  keys: Mark[];
  head: number;
}

/**
 * The keys changed on the source and not yet copied again, each once however often it changed (a key is
 * copied at its current value, so one copy covers every event before the read). Bounded: past `max`
 * keys a mark is dropped and counted, and the owner must repair (a compare-and-copy round) to find them.
 * Queues per db rather than one Map iterated from its start: a Map emptied from the front keeps its
 * deleted slots until it is rehashed, which made each take slower than the last.
 */
export class DirtyKeys {
  private readonly max: number;
  private readonly ids = new Set<string>();
  private readonly queues = new Map<number, DbQueue>();
  /** Marks dropped because the set was full, since the last takeDropped(). */
  private dropped = 0;

  constructor(max = 1_000_000) {
    this.max = max;
  }

  get size(): number {
    return this.ids.size;
  }

  get full(): boolean {
    return this.ids.size >= this.max;
  }

  /** When the key waiting longest was marked (Date.now() ms); undefined when none waits. */
  get oldestMarkedAt(): number | undefined {
    const oldest = this.oldestQueue();
    return oldest ? oldest[1].keys[oldest[1].head]!.markedAt : undefined;
  }

  /** Marks a key; `key` may be a view into a socket buffer (it is copied when kept). */
  mark(db: number, key: Buffer, now = Date.now()): void {
    const name = key.toString('latin1');
    const id = `${db}:${name}`;
    if (this.ids.has(id)) return;
    if (this.ids.size >= this.max) {
      this.dropped++;
      return;
    }
    this.ids.add(id);
    let q = this.queues.get(db);
    if (!q) {
      q = { keys: [], head: 0 };
      this.queues.set(db, q);
    }
    q.keys.push({ key: name, markedAt: now });
  }

  /**
   * Takes up to `limit` keys of one db (the db whose key waits longest, oldest first), removing them, so
   * that an event after this call marks the key again and it is copied once more: a key is never lost
   * between a take and its read.
   */
  take(limit: number): { db: number; keys: DirtyKey[] } | undefined {
    const oldest = this.oldestQueue();
    if (!oldest) return undefined;
    const [db, q] = oldest;
    const end = Math.min(q.keys.length, q.head + limit);
    const keys: DirtyKey[] = [];
    for (let i = q.head; i < end; i++) {
      const m = q.keys[i]!;
      this.ids.delete(`${db}:${m.key}`);
      keys.push({ db, key: Buffer.from(m.key, 'latin1'), markedAt: m.markedAt });
    }
    q.head = end;
    if (q.head === q.keys.length) this.queues.delete(db);
    else if (q.head > 4096 && q.head * 2 > q.keys.length) {
      q.keys = q.keys.slice(q.head);
      q.head = 0;
    }
    return { db, keys };
  }

  /** Marks dropped since the last call (a full set). */
  takeDropped(): number {
    const n = this.dropped;
    this.dropped = 0;
    return n;
  }

  private oldestQueue(): [number, DbQueue] | undefined {
    let best: [number, DbQueue] | undefined;
    for (const entry of this.queues) {
      const q = entry[1];
      if (!best || q.keys[q.head]!.markedAt < best[1].keys[best[1].head]!.markedAt) best = entry;
    }
    return best;
  }
}

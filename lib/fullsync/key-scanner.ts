import type { KeyPredicate } from '../commands/key-filter.ts';
import type { RawConnection } from '../redis/raw-connection.ts';
import type { RespValue } from '../redis/resp.ts';
import { RespError } from '../redis/resp.ts';
import type { KeyBatch } from './stamped-chunk-reader.ts';

/**
 * SCANs one db ahead of the readers on its own connection, so the source never waits for a cursor
 * while DUMP transactions are being prepared. Batches keep SCAN order: a batch's cursorAfter is a
 * valid resume point once it and every batch before it are applied.
 */
export class KeyScanner {
  private readonly conn: RawConnection;
  private readonly count: number;
  private readonly keep: KeyPredicate;
  private readonly maxAhead: number;
  private cursor: string;
  private finished: boolean;
  private readonly ready: KeyBatch[] = [];
  private inFlight: Promise<void> | undefined;
  private error: unknown;
  /** Keys SCAN returned that the filter dropped. */
  filtered = 0;

  constructor(
    conn: RawConnection,
    options: { cursor: string; count: number; keep: KeyPredicate; maxAhead?: number },
  ) {
    this.conn = conn;
    this.cursor = options.cursor;
    this.count = options.count;
    this.keep = options.keep;
    this.maxAhead = options.maxAhead ?? 4;
    this.finished = false;
  }

  /** The next batch (possibly with no keys, so the cursor still advances), or undefined at the end. */
  async next(): Promise<KeyBatch | undefined> {
    for (;;) {
      if (this.error) throw this.error;
      const batch = this.ready.shift();
      if (batch) {
        this.fill();
        return batch;
      }
      if (this.finished && !this.inFlight) return undefined;
      this.fill();
      await this.inFlight;
    }
  }

  private fill(): void {
    if (this.inFlight || this.finished || this.ready.length >= this.maxAhead) return;
    this.inFlight = this.scanOnce().then(
      () => {
        this.inFlight = undefined;
        this.fill();
      },
      (e: unknown) => {
        this.inFlight = undefined;
        this.error = e;
      },
    );
  }

  private async scanOnce(): Promise<void> {
    const reply: RespValue = await this.conn.call(['SCAN', this.cursor, 'COUNT', this.count]);
    if (reply instanceof RespError || !Array.isArray(reply)) throw new Error(`unexpected SCAN reply`);
    const cursor = String(reply[0]);
    const all = reply[1] as Buffer[];
    const keys: Buffer[] = [];
    for (const k of all) if (this.keep(k)) keys.push(k);
    this.filtered += all.length - keys.length;
    this.cursor = cursor;
    if (cursor === '0') this.finished = true;
    this.ready.push({ cursorAfter: cursor, keys });
  }
}

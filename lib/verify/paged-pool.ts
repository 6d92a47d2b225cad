import type { RawConnection } from '../redis/raw-connection.ts';
import type { PagedContext } from './paged-compare.ts';

/**
 * Connections for keys compared in pages, apart from the batch connections: a page request queued behind
 * a pipeline of thousands of DUMPs would wait for all of them. At most `size` pairs, opened on first use.
 */
export class PagedPool {
  private readonly openPair: () => Promise<[RawConnection, RawConnection]>;
  private readonly base: Omit<PagedContext, 'src' | 'tgt'>;
  private readonly size: number;
  private readonly idle: PagedContext[] = [];
  private readonly all = new Set<PagedContext>();
  private opening = 0;
  private readonly waiters: { resolve: (c: PagedContext) => void; reject: (e: Error) => void }[] = [];

  constructor(
    openPair: () => Promise<[RawConnection, RawConnection]>,
    base: Omit<PagedContext, 'src' | 'tgt'>,
    size = 2,
  ) {
    this.openPair = openPair;
    this.base = base;
    this.size = size;
  }

  async run<T>(f: (c: PagedContext) => Promise<T>): Promise<T> {
    const c = await this.acquire();
    try {
      return await f(c);
    } finally {
      this.release(c);
    }
  }

  async close(): Promise<void> {
    const all = [...this.all];
    this.all.clear();
    this.idle.length = 0;
    await Promise.all(
      all.flatMap((c) => [c.src, c.tgt]).map((conn) => conn.close().catch(() => conn.destroy())),
    );
  }

  private async acquire(): Promise<PagedContext> {
    const ready = this.idle.pop();
    if (ready) return ready;
    if (this.all.size + this.opening < this.size) {
      this.opening++;
      try {
        const [src, tgt] = await this.openPair();
        const c: PagedContext = { ...this.base, src, tgt };
        this.all.add(c);
        return c;
      } finally {
        this.opening--;
      }
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private release(c: PagedContext): void {
    const failure = c.src.failed ?? c.tgt.failed;
    if (failure) {
      // A lost connection ends the verification (its error is already on its way up): fail the waiters too.
      this.all.delete(c);
      c.src.destroy();
      c.tgt.destroy();
      for (const w of this.waiters.splice(0)) w.reject(failure);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(c);
    else this.idle.push(c);
  }
}

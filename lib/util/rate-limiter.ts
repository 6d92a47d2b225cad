/**
 * Token buckets for --max-keys-per-second and --max-bytes-per-second. A request larger than one
 * second's budget is let through and paid back by waiting, so big chunks cannot stall forever.
 */
export class RateLimiter {
  private readonly keysPerSecond: number;
  private readonly bytesPerSecond: number;
  private keyTokens: number;
  private byteTokens: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private last: number;

  constructor(
    limits: { keysPerSecond?: number; bytesPerSecond?: number },
    clock: { now?: () => number; sleep?: (ms: number) => Promise<void> } = {},
  ) {
    this.now = clock.now ?? (() => performance.now());
    this.sleep = clock.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.last = this.now();
    this.keysPerSecond = limits.keysPerSecond ?? Number.POSITIVE_INFINITY;
    this.bytesPerSecond = limits.bytesPerSecond ?? Number.POSITIVE_INFINITY;
    this.keyTokens = Math.min(this.keysPerSecond, 1e12);
    this.byteTokens = Math.min(this.bytesPerSecond, 1e15);
  }

  get unlimited(): boolean {
    return (
      this.keysPerSecond === Number.POSITIVE_INFINITY && this.bytesPerSecond === Number.POSITIVE_INFINITY
    );
  }

  async acquire(keys: number, bytes: number): Promise<void> {
    if (this.unlimited) return;
    this.refill();
    this.keyTokens -= keys;
    this.byteTokens -= bytes;
    const waitMs = Math.max(
      this.keyTokens < 0 ? (-this.keyTokens / this.keysPerSecond) * 1000 : 0,
      this.byteTokens < 0 ? (-this.byteTokens / this.bytesPerSecond) * 1000 : 0,
    );
    if (waitMs > 0) await this.sleep(waitMs);
  }

  private refill(): void {
    const now = this.now();
    const dt = (now - this.last) / 1000;
    this.last = now;
    this.keyTokens = Math.min(this.keysPerSecond, this.keyTokens + dt * this.keysPerSecond);
    this.byteTokens = Math.min(this.bytesPerSecond, this.byteTokens + dt * this.bytesPerSecond);
  }
}

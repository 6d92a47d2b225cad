import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../lib/util/rate-limiter.ts';

/** A clock that only moves when the limiter sleeps: the arithmetic is tested, not the machine's speed. */
function fakeClock() {
  let t = 0;
  const sleeps: number[] = [];
  return {
    sleeps,
    elapsed: () => t,
    clock: {
      now: () => t,
      sleep: async (ms: number) => {
        sleeps.push(ms);
        t += ms;
      },
    },
  };
}

describe('RateLimiter', () => {
  it('paces keys to the limit after a one-second burst', async () => {
    const c = fakeClock();
    const limiter = new RateLimiter({ keysPerSecond: 1000 }, c.clock);
    for (let i = 0; i < 30; i++) await limiter.acquire(100, 0);
    // 3000 keys at 1000/s with 1000 available at once: 2 s of waiting.
    expect(c.elapsed()).toBeCloseTo(2000, 5);
  });

  it('paces bytes, and the stricter of the two limits wins', async () => {
    const c = fakeClock();
    const limiter = new RateLimiter({ keysPerSecond: 1_000_000, bytesPerSecond: 1_000_000 }, c.clock);
    for (let i = 0; i < 10; i++) await limiter.acquire(10, 500_000);
    expect(c.elapsed()).toBeCloseTo(4000, 5);
  });

  it('lets a request larger than one second of budget through and pays it back', async () => {
    const c = fakeClock();
    const limiter = new RateLimiter({ bytesPerSecond: 1000 }, c.clock);
    await limiter.acquire(0, 5000);
    expect(c.sleeps).toEqual([4000]);
  });

  it('never waits without limits', async () => {
    const c = fakeClock();
    const limiter = new RateLimiter({}, c.clock);
    expect(limiter.unlimited).toBe(true);
    await limiter.acquire(1e9, 1e12);
    expect(c.sleeps).toEqual([]);
  });
});

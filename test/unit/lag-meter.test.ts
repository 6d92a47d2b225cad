import { describe, expect, it } from 'vitest';
import { LagMeter } from '../../lib/incremental/lag-meter.ts';

function fakeClock(start = 1_000_000) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

describe('LagMeter', () => {
  it('reports nothing before any observation', () => {
    const m = new LagMeter({ now: fakeClock().now });
    expect(m.snapshot()).toEqual({
      opsPerSecond: 0,
      lagMs: undefined,
      p50LagMs: undefined,
      p99LagMs: undefined,
      bytesBehind: undefined,
      appliedOffset: undefined,
    });
  });

  it('lag is apply time minus heartbeat time, latest wins', () => {
    const clock = fakeClock();
    const m = new LagMeter({ now: clock.now });
    m.observeHeartbeat(clock.now() - 250, clock.now());
    expect(m.lagMs).toBe(250);
    clock.advance(1000);
    m.observeHeartbeat(clock.now() - 40);
    expect(m.lagMs).toBe(40);
  });

  it('a heartbeat from the future (clock skew) reads as 0 lag', () => {
    const clock = fakeClock();
    const m = new LagMeter({ now: clock.now });
    m.observeHeartbeat(clock.now() + 500, clock.now());
    expect(m.lagMs).toBe(0);
  });

  it('p50 and p99 are nearest-rank percentiles over the window', () => {
    const clock = fakeClock();
    const m = new LagMeter({ now: clock.now, lagWindowMs: 200_000 });
    // Lags 1..100 ms, one per second.
    for (let lag = 1; lag <= 100; lag++) {
      clock.advance(1000);
      m.observeHeartbeat(clock.now() - lag);
    }
    expect(m.p50LagMs).toBe(50);
    expect(m.p99LagMs).toBe(99);
    expect(m.lagMs).toBe(100);
  });

  it('old lag samples leave the window', () => {
    const clock = fakeClock();
    const m = new LagMeter({ now: clock.now, lagWindowMs: 10_000 });
    m.observeHeartbeat(clock.now() - 5000);
    clock.advance(5000);
    m.observeHeartbeat(clock.now() - 10);
    expect(m.p99LagMs).toBe(5000);
    clock.advance(5000);
    // The 5000 ms sample is now exactly one window old: gone.
    expect(m.p99LagMs).toBe(10);
    expect(m.p50LagMs).toBe(10);
    clock.advance(5000);
    expect(m.p50LagMs).toBeUndefined();
    // The latest lag stays known even when no heartbeat is in the window.
    expect(m.lagMs).toBe(10);
  });

  it('bytes behind is the source offset minus the applied offset, never negative', () => {
    const m = new LagMeter({ now: fakeClock().now });
    m.observeSourceOffset(10_000);
    expect(m.bytesBehind).toBeUndefined();
    m.observeApplied(7_500, 3);
    expect(m.bytesBehind).toBe(2_500);
    expect(m.appliedOffset).toBe(7_500);
    // The source offset was sampled before these batches: applied runs ahead of it.
    m.observeApplied(12_000, 5);
    expect(m.bytesBehind).toBe(0);
    m.observeSourceOffset(20_000);
    expect(m.bytesBehind).toBe(8_000);
  });

  it('offsets only move forward', () => {
    const m = new LagMeter({ now: fakeClock().now });
    m.observeSourceOffset(5000);
    m.observeSourceOffset(4000);
    m.observeApplied(3000, 1);
    m.observeApplied(2000, 1);
    expect(m.appliedOffset).toBe(3000);
    expect(m.bytesBehind).toBe(2000);
  });

  it('ops per second counts the commands of the sliding window', () => {
    const clock = fakeClock();
    const m = new LagMeter({ now: clock.now, opsWindowMs: 10_000 });
    // 10 s at 500 commands per second, in batches of 50 every 100 ms.
    for (let i = 0; i < 100; i++) {
      clock.advance(100);
      m.observeApplied(i * 1000, 50);
    }
    expect(m.opsPerSecond).toBe(500);
    // Then 2000 commands per second for 5 s: half the window old rate, half new.
    for (let i = 0; i < 50; i++) {
      clock.advance(100);
      m.observeApplied(100_000 + i * 1000, 200);
    }
    expect(m.opsPerSecond).toBe(1250);
    // Idle for a whole window: nothing left.
    clock.advance(10_000);
    expect(m.opsPerSecond).toBe(0);
  });

  it('before a whole window has passed, divides by the elapsed time (at least one second)', () => {
    const clock = fakeClock();
    const m = new LagMeter({ now: clock.now, opsWindowMs: 10_000 });
    clock.advance(10);
    m.observeApplied(100, 300);
    expect(m.opsPerSecond).toBe(300);
    clock.advance(1990);
    m.observeApplied(200, 300);
    expect(m.opsPerSecond).toBe(300);
  });

  it('keeps the running sum right across many batches', () => {
    const clock = fakeClock();
    const m = new LagMeter({ now: clock.now, opsWindowMs: 1000 });
    for (let i = 0; i < 5000; i++) {
      clock.advance(1);
      m.observeApplied(i, 1);
    }
    // 1000 ms window at one command per ms.
    expect(m.opsPerSecond).toBe(1000);
  });
});

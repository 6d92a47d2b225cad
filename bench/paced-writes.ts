import { Redis } from 'ioredis';

/**
 * redis-benchmark cannot hold a rate: every 10 ms this sends, in one pipeline, the SET/INCR commands due
 * by then (rate × elapsed − sent, on random keys among `keys`), so a late tick is made up by the next; a
 * few pipelines may be in flight, so one slow round trip does not hold back the next tick. The
 * benchmarks run it in a process of its own, so its CPU does not delay their lag samplers. Resolves with
 * the achieved ops/s.
 */
export async function pacedWrites(
  port: number,
  opsPerSecond: number,
  durationMs: number,
  o: { keys?: number; value?: string } = {},
): Promise<number> {
  const keys = o.keys ?? 100_000;
  const value = o.value ?? 'xxx';
  const w = new Redis(port, '127.0.0.1');
  const inFlight: Promise<unknown>[] = [];
  const start = performance.now();
  let sent = 0;
  for (let tick = 1; ; tick++) {
    const elapsed = Math.min(performance.now() - start, durationMs);
    const due = Math.floor((opsPerSecond * elapsed) / 1000) - sent;
    if (due > 0) {
      const p = w.pipeline();
      for (let i = 0; i < due; i++) {
        const n = Math.floor(Math.random() * keys);
        if ((sent + i) % 2 === 0) p.set(`paced:key:${n}`, value);
        else p.incr(`paced:counter:${n}`);
      }
      inFlight.push(p.exec());
      sent += due;
      if (inFlight.length >= 4) await inFlight.shift();
    }
    if (elapsed >= durationMs) break;
    await new Promise((r) => setTimeout(r, Math.max(0, start + tick * 10 - performance.now())));
  }
  await Promise.all(inFlight);
  const achieved = sent / ((performance.now() - start) / 1000);
  w.disconnect();
  return achieved;
}

import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { duration, ProgressReporter } from '../../lib/progress/progress-reporter.ts';

function capture(tty: boolean) {
  const out = new PassThrough() as PassThrough & NodeJS.WriteStream;
  let text = '';
  out.on('data', (d: Buffer) => {
    text += d.toString();
  });
  return { reporter: new ProgressReporter({ out, tty, intervalMs: 0 }), text: () => text };
}

describe('ProgressReporter', () => {
  it('writes JSON lines with keys, total, bytes and rates when not a TTY', () => {
    const c = capture(false);
    c.reporter.update({ phase: 'full sync', unit: 'db0', keysDone: 10, keysTotal: 100, bytesDone: 1000 });
    c.reporter.log('copying db0', { unit: 'db0' });
    c.reporter.result({ keys: 100 });
    const lines = c
      .text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({
      phase: 'full sync',
      unit: 'db0',
      keys: 10,
      keysTotal: 100,
      bytes: 1000,
    });
    expect(lines[1]).toMatchObject({ msg: 'copying db0', unit: 'db0' });
    expect(lines[2]).toMatchObject({ msg: 'summary', keys: 100 });
  });

  it('draws one redrawn bar with percent, keys and MB on a TTY, and keeps log lines above it', () => {
    const c = capture(true);
    c.reporter.update({
      phase: 'full sync',
      unit: 'db0',
      keysDone: 250,
      keysTotal: 1000,
      bytesDone: 2_500_000,
    });
    c.reporter.log('copying big key big:hash in parts');
    c.reporter.finish();
    const text = c.text();
    expect(text).toContain('full sync db0 [######..................] 25.0% 250/1,000 keys, 2.5 MB');
    expect(text).toContain('\r\x1b[2Kcopying big key big:hash in parts\n');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('prints JSON summaries only in JSON mode', () => {
    const c = capture(true);
    c.reporter.result({ keys: 1 });
    expect(c.text()).toBe('');
  });

  it('never prints a negative rate when a counter starts again (the verify after the copy), and sums units side by side', () => {
    let t = 0;
    const out = new PassThrough() as PassThrough & NodeJS.WriteStream;
    let text = '';
    out.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const reporter = new ProgressReporter({ out, tty: false, intervalMs: 0, now: () => t });
    // Two units copied side by side, 1,000 keys per 10 ms each: their counters interleave.
    for (let i = 1; i <= 100; i++) {
      t += 10;
      reporter.update({ phase: 'full sync', unit: 'db0', keysDone: 1000 * i, bytesDone: 10_000 * i });
      reporter.update({ phase: 'full sync', unit: 'db1', keysDone: 1000 * i, bytesDone: 10_000 * i });
    }
    // The verification counts from zero, at 500 keys per 10 ms, while the copy's samples are in the window.
    for (let i = 1; i <= 100; i++) {
      t += 10;
      reporter.update({ phase: 'verify', unit: 'db0', keysDone: 500 * i, bytesDone: 0 });
    }
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { phase: string; keysPerSecond: number; bytesPerSecond: number });
    expect(lines).toHaveLength(300);
    for (const l of lines) {
      expect(l.keysPerSecond).toBeGreaterThanOrEqual(0);
      expect(l.bytesPerSecond).toBeGreaterThanOrEqual(0);
    }
    // Once the window holds the copy only: both units' keys, 2 × 1,000 keys per 10 ms.
    expect(lines[199]).toMatchObject({
      phase: 'full sync',
      keysPerSecond: 200_000,
      bytesPerSecond: 2_000_000,
    });
    // The 5 s window still reaches back to the first sample (t = 10 ms): the copy's 2 × 99 increments
    // and the verification's 99, over 1.99 s. (Its first snapshot of each counter counts for nothing.)
    const last = lines[299]!;
    expect(last.phase).toBe('verify');
    expect(last.keysPerSecond).toBe(Math.round((2 * 99 * 1000 + 99 * 500) / 1.99));
  });

  it('measures the next phase from its own start after finish()', () => {
    let t = 0;
    const out = new PassThrough() as PassThrough & NodeJS.WriteStream;
    let text = '';
    out.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const reporter = new ProgressReporter({ out, tty: false, intervalMs: 0, now: () => t });
    for (let i = 1; i <= 10; i++) {
      t += 10;
      reporter.update({ phase: 'full sync', unit: 'db0', keysDone: 1000 * i, bytesDone: 0 });
    }
    reporter.finish();
    text = '';
    for (let i = 1; i <= 10; i++) {
      t += 10;
      reporter.update({ phase: 'verify', unit: 'db0', keysDone: 500 * i, bytesDone: 0 });
    }
    const rates = text
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { keysPerSecond: number }).keysPerSecond);
    // The first snapshot of a counter has nothing to compare with; every later one is 500 keys per 10 ms.
    expect(rates).toEqual([0, ...Array(9).fill(50_000)]);
  });

  it('formats durations for the ETA', () => {
    expect([duration(5), duration(65), duration(3725)]).toEqual(['5s', '1m05s', '1h02m']);
  });
});

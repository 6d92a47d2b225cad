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

  it('formats durations for the ETA', () => {
    expect([duration(5), duration(65), duration(3725)]).toEqual(['5s', '1m05s', '1h02m']);
  });
});

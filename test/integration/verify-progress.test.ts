import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ProgressReporter } from '../../lib/progress/progress-reporter.ts';
import { runTaskLocally } from '../../lib/task/run-local.ts';
import { parseTaskSpec } from '../../lib/task/spec.ts';
import type { VerifyReport } from '../../lib/verify/verify-types.ts';
import { startRedis, stopAllRedis } from '../support/redis-server.ts';
import { seedDbs } from '../support/sync-helpers.ts';

afterAll(async () => {
  await stopAllRedis();
});

interface Line {
  phase?: string;
  unit?: string;
  keys?: number;
  keysTotal?: number;
  keysPerSecond?: number;
  bytesPerSecond?: number;
  msg?: string;
}

describe('progress lines of a full sync and its verification', () => {
  it('are never negative, and the verification counts add up to its report', async () => {
    const [source, target] = await Promise.all([startRedis(), startRedis()]);
    const PER_DB = 30_000;
    await seedDbs(source, [0, 1], PER_DB);
    const out = new PassThrough() as PassThrough & NodeJS.WriteStream;
    let text = '';
    out.on('data', (d: Buffer) => {
      text += d.toString();
    });
    // Every snapshot printed, so each of the verification's batches is a line to check; rates over a
    // window far shorter than the copy, so the verification's first lines are measured against the
    // copy's last snapshots, as in a sync of millions of keys.
    const progress = new ProgressReporter({ out, tty: false, intervalMs: 0, windowMs: 20 });
    let report: VerifyReport | undefined;
    const spec = parseTaskSpec(
      // The scan reader's copy prints a line per batch, as the verification does.
      {
        source: { url: source.url },
        target: { url: target.url },
        syncType: 'full',
        fullSync: { reader: 'scan' },
      },
      { mode: 'local' },
    );
    await runTaskLocally(spec, {
      progress,
      onVerify: (r) => {
        report = r;
      },
    });
    expect(report?.consistent).toBe(true);
    expect(report!.keysCompared).toBe(2 * PER_DB);
    expect(report!.keysScannedOnTarget).toBe(2 * PER_DB);

    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line)
      .filter((l) => l.phase !== undefined);
    const copy = lines.filter((l) => l.phase === 'full sync');
    const verify = lines.filter((l) => l.phase!.startsWith('verify'));
    expect(copy.length).toBeGreaterThan(2);
    // 2 dbs × (source pass + destination pass) × about 30 SCAN batches (COUNT 1000 is a hint).
    expect(verify.length).toBeGreaterThan(60);
    for (const l of lines) {
      expect(l.keysPerSecond, JSON.stringify(l)).toBeGreaterThanOrEqual(0);
      expect(l.bytesPerSecond, JSON.stringify(l)).toBeGreaterThanOrEqual(0);
    }
    // The copy counts per db, up to that db's keys.
    for (const unit of ['db0', 'db1']) {
      const keys = copy.filter((l) => l.unit === unit).map((l) => l.keys!);
      expect(keys).toEqual([...keys].sort((a, b) => a - b));
      expect(keys.at(-1)).toBe(PER_DB);
    }
    // The verification counts every key looked at on either side, only upwards, to the report's total.
    const done = verify.map((l) => l.keys!);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(done.at(-1)).toBe(report!.keysCompared + report!.keysScannedOnTarget);
    expect(verify.at(-1)!.keysTotal).toBe(4 * PER_DB);
    // Some rate was measured during the verification (a window of at least two of its own snapshots).
    expect(verify.some((l) => l.keysPerSecond! > 0)).toBe(true);
  }, 120_000);
});

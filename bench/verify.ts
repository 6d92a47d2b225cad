/**
 * npm run bench:verify [-- --keys 1200000 --value-bytes 100,16 --runs 2 --baseline /path/to/checkout]
 *
 * Is the verification at least as fast as the copy it checks (issue #14)? For each value size, one
 * source is seeded with the mixed dataset (strings, hashes, lists, sets, sorted sets), and each run is
 * `redis-dts sync --sync-type full --verify full` (the real CLI and state machine, in-memory state) into
 * a fresh server. From that run's own JSON log lines:
 *   copy keys/s   = source keys / (first "copying" line → first "verifying" line)
 *   verify keys/s = source keys / ("verifying" line → the verify summary line), the pass over the
 *                   destination for extra keys included; the report's own keys/s (round 1) beside it
 * and their ratio verify/copy, per run (target >= 1.0). Both spans are read from one process's clock,
 * so the ratio holds however loaded the machine is; the figures themselves do not.
 *
 * --baseline runs another checkout's CLI (e.g. a copy of main before a change) on the same dataset,
 * alternating with ours run by run, so a before/after ratio comes from one run of the bench.
 * Every progress line's keysPerSecond is checked: a negative one is counted and printed.
 */
import { parseArgs } from 'node:util';
import { compareServers } from '../test/support/compare.ts';
import { startRedis, stopAllRedis } from '../test/support/redis-server.ts';
import { seedMixedDataset } from './mixed-dataset.ts';
import { runChild } from './run-child.ts';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '1200000' },
    'value-bytes': { type: 'string', default: '100,16' },
    runs: { type: 'string', default: '2' },
    baseline: { type: 'string' },
  },
});
const keys = Number(values.keys);
const sizes = values['value-bytes'].split(',').map(Number);
const runs = Number(values.runs);

interface Variant {
  name: string;
  bin: string;
}
const variants: Variant[] = [{ name: 'this', bin: new URL('../bin/redis-dts.ts', import.meta.url).pathname }];
if (values.baseline) variants.push({ name: 'baseline', bin: `${values.baseline}/bin/redis-dts.ts` });

interface Measured {
  copySeconds: number;
  verifySeconds: number;
  reportKeysPerSecond: number;
  negativeRates: number[];
}

const results: string[] = [];
try {
  for (const valueBytes of sizes) {
    const source = await startRedis();
    try {
      const dbsize = await seedMixedDataset(source.port, keys, valueBytes);
      for (let run = 1; run <= runs; run++) {
        for (const v of variants) {
          const m = await measure(v, source.url, dbsize, run === 1);
          const copy = dbsize / m.copySeconds;
          const verify = dbsize / m.verifySeconds;
          const line =
            `${valueBytes}-byte values, run ${run}, ${v.name}: copy ${m.copySeconds.toFixed(2)} s = ${fmt(copy)} keys/s | ` +
            `verify ${m.verifySeconds.toFixed(2)} s = ${fmt(verify)} keys/s (report: ${fmt(m.reportKeysPerSecond)} keys/s) | ` +
            `ratio verify/copy ${(verify / copy).toFixed(2)} | negative progress rates: ${m.negativeRates.length}` +
            (m.negativeRates.length > 0 ? ` (${m.negativeRates.slice(0, 3).join(', ')}…)` : '');
          console.log(line);
          results.push(line);
        }
      }
    } finally {
      await source.stop();
    }
  }
  console.log(`\nRESULT (target: ratio verify/copy >= 1.0, no negative rate)\n${results.join('\n')}`);
} finally {
  await stopAllRedis();
}

async function measure(v: Variant, sourceUrl: string, dbsize: number, digest: boolean): Promise<Measured> {
  const target = await startRedis();
  try {
    const { code, err } = await runChild(process.execPath, [
      v.bin,
      'sync',
      '--source',
      sourceUrl,
      '--target',
      target.url,
      '--sync-type',
      'full',
      '--in-memory',
      '--progress',
      'json',
      '--verify',
      'full',
    ]);
    if (code !== 0) throw new Error(`${v.name}: redis-dts exited ${code}: ${err.slice(-2000)}`);
    const lines = err
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const timeOf = (test: (msg: string) => boolean) => {
      const line = lines.find((l) => typeof l.msg === 'string' && test(l.msg));
      if (!line) throw new Error(`${v.name}: no log line found (${test}) in: ${err.slice(-2000)}`);
      return { at: Date.parse(String(line.time)), line };
    };
    const copying = timeOf((m) => m.startsWith('copying '));
    const verifying = timeOf((m) => m.startsWith('verifying '));
    const verified = timeOf((m) => m.startsWith('verify: '));
    const summary = String(verified.line.msg);
    if (
      verified.line.consistent !== true ||
      !summary.includes(`${dbsize.toLocaleString('en-US')} key(s) compared`)
    )
      throw new Error(`${v.name}: not every key verified consistent: ${summary}`);
    if (digest) {
      const c = await compareServers(sourceUrl, target.url, { digestOnly: true });
      if (!c.equal) throw new Error(`${v.name}: DEBUG DIGEST differs after the sync: ${c.summary()}`);
    }
    const reported = /([\d,]+) keys\/s/.exec(summary);
    return {
      copySeconds: (verifying.at - copying.at) / 1000,
      verifySeconds: (verified.at - verifying.at) / 1000,
      reportKeysPerSecond: reported ? Number(reported[1]!.replaceAll(',', '')) : Number.NaN,
      negativeRates: lines
        .map((l) => l.keysPerSecond)
        .filter((r): r is number => typeof r === 'number' && r < 0),
    };
  } finally {
    await target.stop();
  }
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

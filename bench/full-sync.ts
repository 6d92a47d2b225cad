/**
 * npm run bench:full [-- --keys 1200000 --value-bytes 100 --runs 2 --readers scan,rdb [--random-values]]
 *
 * Seeds one source with a mixed dataset, then in the same run measures
 *   native: a fresh redis-server doing REPLICAOF the source (diskless, delay 0) until the link is up
 *           and DBSIZE matches, and
 *   ours:   `redis-dts sync --sync-type full --full-sync-reader <reader>` (the real CLI, in-memory
 *           state) into a fresh server, for each reader asked,
 * and prints keys/s, MB/s, our peak RSS and the ratio ours/native per reader. Figures, not
 * assertions: the targets (scan <= 2.0, rdb <= 1.3) are judged by reading them.
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { compareServers } from '../test/support/compare.ts';
import { startRedis, stopAllRedis } from '../test/support/redis-server.ts';
import { seedMixedDataset, seedRandomStrings } from './mixed-dataset.ts';
import { measureNativeReplication, rate } from './native-replication.ts';
import { runChild } from './run-child.ts';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '1200000' },
    'value-bytes': { type: 'string', default: '100' },
    runs: { type: 'string', default: '2' },
    verify: { type: 'boolean', default: true },
    'no-verify': { type: 'boolean', default: false },
    readers: { type: 'string', default: 'scan,rdb' },
    // Strings of random bytes instead of the mixed dataset: an RDB as large as the data (for RSS).
    'random-values': { type: 'boolean', default: false },
  },
});
const readers = values.readers.split(',').map((r) => r.trim());
for (const r of readers) if (r !== 'scan' && r !== 'rdb') throw new Error(`--readers: scan or rdb, got ${r}`);
const keys = Number(values.keys);
const valueBytes = Number(values['value-bytes']);
const runs = Number(values.runs);

const source = await startRedis({ args: ['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'] });
try {
  const dbsize = values['random-values']
    ? await seedRandomStrings(source.port, keys, valueBytes)
    : await seedMixedDataset(source.port, keys, valueBytes);

  const native: number[] = [];
  const ours = new Map<string, { seconds: number; bytes: number; peakRssMb: number }[]>(
    readers.map((r) => [r, []]),
  );
  for (let run = 1; run <= runs; run++) {
    native.push(await measureNativeReplication(source.port, dbsize));
    const n = native[native.length - 1]!;
    const parts = [`run ${run}: native ${n.toFixed(2)} s (${rate(dbsize, n)} keys/s)`];
    for (const reader of readers) {
      const o = await measureOurs(
        source.url,
        dbsize,
        reader,
        values.verify && !values['no-verify'] && run === 1,
      );
      ours.get(reader)!.push(o);
      parts.push(
        `${reader} ${o.seconds.toFixed(2)} s (${rate(dbsize, o.seconds)} keys/s, ` +
          `${(o.bytes / 1e6 / o.seconds).toFixed(1)} MB/s of payload, peak RSS ${o.peakRssMb.toFixed(0)} MB, ` +
          `ratio ${(o.seconds / n).toFixed(2)})`,
      );
    }
    console.log(parts.join(' | '));
  }
  const bestNative = Math.min(...native);
  console.log('');
  for (const reader of readers) {
    const list = ours.get(reader)!;
    const best = list.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    console.log(
      `RESULT full sync (${reader} reader) of ${dbsize.toLocaleString('en-US')} keys of ${valueBytes}-byte values: ` +
        `redis-dts ${best.seconds.toFixed(2)} s = ${rate(dbsize, best.seconds)} keys/s, ` +
        `${(best.bytes / 1e6 / best.seconds).toFixed(1)} MB/s; native replication ${bestNative.toFixed(2)} s = ` +
        `${rate(dbsize, bestNative)} keys/s; ratio ours/native ${(best.seconds / bestNative).toFixed(2)} ` +
        `(target <= ${reader === 'rdb' ? '1.3' : '2.0'}); peak RSS ${Math.max(...list.map((o) => o.peakRssMb)).toFixed(0)} MB (best of ${runs})`,
    );
  }
} finally {
  await stopAllRedis();
}

async function measureOurs(
  sourceUrl: string,
  dbsize: number,
  reader: string,
  verify: boolean,
): Promise<{ seconds: number; bytes: number; peakRssMb: number }> {
  const target = await startRedis();
  try {
    const t = performance.now();
    const { code, out, err } = await runChild(process.execPath, [
      new URL('../bin/redis-dts.ts', import.meta.url).pathname,
      'sync',
      '--source',
      sourceUrl,
      '--target',
      target.url,
      '--sync-type',
      'full',
      '--full-sync-reader',
      reader,
      '--in-memory',
      '--progress',
      'json',
      // Native replication verifies nothing; the copy is checked below, outside the timing.
      '--verify',
      'off',
    ]);
    const seconds = (performance.now() - t) / 1000;
    if (code !== 0) throw new Error(`redis-dts exited ${code}: ${err.slice(-2000)}`);
    const summary = err
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'summary');
    if (!summary) throw new Error(`no summary line from redis-dts: ${out}`);
    const t2 = new Redis(target.port, '127.0.0.1');
    const copied = await t2.dbsize();
    t2.disconnect();
    if (copied !== dbsize) throw new Error(`destination has ${copied} keys, source ${dbsize}`);
    if (verify) {
      const c = await compareServers(sourceUrl, target.url, { digestOnly: true });
      if (!c.equal) throw new Error(`DEBUG DIGEST differs after the full sync: ${c.summary()}`);
      console.log('verified: DEBUG DIGEST and key counts equal');
    }
    return { seconds, bytes: Number(summary.bytes), peakRssMb: Number(summary.peakRssMb) };
  } finally {
    await target.stop();
  }
}

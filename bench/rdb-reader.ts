/**
 * npm run bench:rdb [-- --keys 1000000 --value-bytes 100 --runs 2 --rdbcompression no]
 *
 * Seeds one source with a mixed dataset, then in the same run measures
 *   native: a fresh redis-server doing REPLICAOF the source (diskless, delay 0) until the link is up
 *           and DBSIZE matches (the RDB transferred and loaded), and
 *   reader: the RDB reader (lib/replication/rdb) in a child process of its own, taking the same source's
 *           RDB over PSYNC and building every key's RESTORE payload (nothing written anywhere),
 * and prints MB/s of RDB, keys/s, the reader's peak RSS and the ratio reader/native. Figures, not
 * assertions. The reader's time counts from connecting to the source until the last key's payload, so
 * it includes the source's fork and RDB production; "parser alone" times the same RDB held in memory
 * (another child, whose RSS is not reported: it holds the whole RDB).
 */
import { parseArgs } from 'node:util';
import { parseRedisUrl } from '../lib/redis/url.ts';
import { RdbParser } from '../lib/replication/rdb/rdb-parser.ts';
import { readRdbSnapshot } from '../lib/replication/rdb/rdb-snapshot.ts';
import { receiveRawRdb } from '../test/support/rdb-restore.ts';
import { startRedis, stopAllRedis } from '../test/support/redis-server.ts';
import { seedMixedDataset } from './mixed-dataset.ts';
import { measureNativeReplication, rate } from './native-replication.ts';
import { runChild } from './run-child.ts';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    'value-bytes': { type: 'string', default: '100' },
    runs: { type: 'string', default: '2' },
    /** The source's rdbcompression: `no` makes the RDB as large as the data (the seeded values compress well). */
    rdbcompression: { type: 'string', default: 'yes' },
    /** Internal: run the reader against this source URL and print its figures as JSON. */
    child: { type: 'string' },
    /** Internal: with --child, receive the whole RDB first, then time the parser alone. */
    'parse-only': { type: 'boolean', default: false },
  },
});

/** Socket-sized pieces, as the reader gets them from the link. */
const PIECE = 64 * 1024;

interface ReaderFigures {
  seconds: number;
  keys: number;
  rdbBytes: number;
  payloadBytes: number;
  peakRssMb: number;
}

if (values.child && values['parse-only']) {
  const rdb = await receiveRawRdb(values.child);
  const t = performance.now();
  let payloadBytes = 0;
  const parser = new RdbParser({
    onEntry: (entry) => {
      payloadBytes += entry.payload.length;
    },
  });
  for (let i = 0; i < rdb.length; i += PIECE) parser.push(rdb.subarray(i, i + PIECE));
  const summary = parser.end();
  const figures: ReaderFigures = {
    seconds: (performance.now() - t) / 1000,
    keys: summary.keys,
    rdbBytes: summary.bytes,
    payloadBytes,
    peakRssMb: Number.NaN,
  };
  console.log(JSON.stringify(figures));
} else if (values.child) {
  const t = performance.now();
  let payloadBytes = 0;
  const snapshot = await readRdbSnapshot(parseRedisUrl(values.child, 'source'), {
    onEntry: (entry) => {
      payloadBytes += entry.payload.length;
      return undefined;
    },
  });
  const figures: ReaderFigures = {
    seconds: (performance.now() - t) / 1000,
    keys: snapshot.keys,
    rdbBytes: snapshot.bytes,
    payloadBytes,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
  console.log(JSON.stringify(figures));
} else {
  await main();
}

async function main(): Promise<void> {
  const keys = Number(values.keys);
  const valueBytes = Number(values['value-bytes']);
  const runs = Number(values.runs);
  const source = await startRedis({
    args: [
      '--repl-diskless-sync',
      'yes',
      '--repl-diskless-sync-delay',
      '0',
      '--rdbcompression',
      values.rdbcompression,
    ],
  });
  try {
    const dbsize = await seedMixedDataset(source.port, keys, valueBytes);
    const native: number[] = [];
    const reader: ReaderFigures[] = [];
    for (let run = 1; run <= runs; run++) {
      native.push(await measureNativeReplication(source.port, dbsize));
      const r = await measureReader(source.url, false);
      const alone = await measureReader(source.url, true);
      if (r.keys !== dbsize) throw new Error(`the reader yielded ${r.keys} keys, the source has ${dbsize}`);
      reader.push(r);
      const n = native[native.length - 1]!;
      console.log(
        `run ${run}: native ${n.toFixed(2)} s (${rate(dbsize, n)} keys/s) | reader ${describe(r)} | ratio ${(r.seconds / n).toFixed(2)} | ` +
          `parser alone ${alone.seconds.toFixed(2)} s (${rate(alone.keys, alone.seconds)} keys/s, ${(alone.rdbBytes / 1e6 / alone.seconds).toFixed(1)} MB/s)`,
      );
    }
    const bestNative = Math.min(...native);
    const best = reader.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    console.log(
      `\nRESULT RDB reader on ${dbsize.toLocaleString('en-US')} keys (${(best.rdbBytes / 1e6).toFixed(0)} MB of RDB): ${describe(best)}; ` +
        `native replication ${bestNative.toFixed(2)} s = ${rate(dbsize, bestNative)} keys/s; ` +
        `ratio reader/native ${(best.seconds / bestNative).toFixed(2)}; ` +
        `peak RSS ${Math.max(...reader.map((r) => r.peakRssMb)).toFixed(0)} MB (best of ${runs})`,
    );
  } finally {
    await stopAllRedis();
  }
}

function describe(r: ReaderFigures): string {
  return (
    `${r.seconds.toFixed(2)} s (${rate(r.keys, r.seconds)} keys/s, ${(r.rdbBytes / 1e6 / r.seconds).toFixed(1)} MB/s of RDB, ` +
    `${(r.payloadBytes / 1e6).toFixed(0)} MB of payloads, peak RSS ${r.peakRssMb.toFixed(0)} MB)`
  );
}

/** The reader in a fresh process, so its peak RSS is its own (not the seeding's). */
async function measureReader(sourceUrl: string, parseOnly: boolean): Promise<ReaderFigures> {
  const args = [
    new URL(import.meta.url).pathname,
    '--child',
    sourceUrl,
    ...(parseOnly ? ['--parse-only'] : []),
  ];
  const { code, out, err } = await runChild(process.execPath, args);
  if (code !== 0) throw new Error(`the reader exited ${code}: ${err.slice(-2000)}`);
  return JSON.parse(out.trim().split('\n').pop()!) as ReaderFigures;
}

/**
 * npm run property [-- --commands 300000 --seed N --binary path/to/redis-server (source and destination)]
 *
 * The long run of the replication-stream property (test/integration/replication-property.test.ts is
 * the fast one): calls of every write command the source reports, generated from its COMMAND DOCS, run
 * against the source while `redis-dts sync` copies it, then DEBUG DIGEST and a key-by-key comparison.
 * Prints the seed, the calls sent and accepted, commands never accepted, the time, and the verdict;
 * exits 1 when the copy differs or the sync stopped.
 */
import { parseArgs } from 'node:util';
import { runReplicationProperty } from '../test/support/property-run.ts';
import { stopAllRedis } from '../test/support/redis-server.ts';

const { values } = parseArgs({
  options: {
    commands: { type: 'string', default: '300000' },
    seed: { type: 'string' },
    binary: { type: 'string' },
    'seed-keys': { type: 'string', default: '20000' },
  },
});
const seed = Number(values.seed ?? Math.floor(Math.random() * 2 ** 31));
console.log(`replication property: ${values.commands} calls, seed ${seed}`);
try {
  const r = await runReplicationProperty({
    commands: Number(values.commands),
    seed,
    seedKeys: Number(values['seed-keys']),
    ...(values.binary ? { binary: values.binary } : {}),
    log: (line) => console.log(`  ${line}`),
  });
  const names = Object.entries(r.acceptedBy).sort((a, b) => b[1] - a[1]);
  console.log(
    `sent ${r.sent}, accepted by the source ${r.accepted} (${names.length} commands), ${r.seconds.toFixed(1)} s`,
  );
  console.log(`never accepted: ${r.neverAccepted.join(' ') || '(none)'}`);
  console.log(
    `sync exit code ${r.exitCode}; ${r.equal ? 'EQUAL' : 'DIFFERENT'}${r.upstreamGap ? ' (to the native replica)' : ''}`,
  );
  if (r.upstreamGap) console.log(r.report.slice(0, 2000));
  if (!r.equal) {
    console.log(r.report.slice(-4000));
    console.log(`reproduce: npm run property -- --commands ${values.commands} --seed ${seed}`);
    process.exitCode = 1;
  }
} finally {
  await stopAllRedis();
}

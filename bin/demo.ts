/**
 * `./dts demo`: a first run for newcomers, on this machine only. Starts two throwaway redis-servers,
 * seeds every data type into dbs 0, 1 and 15, runs the real `redis-dts sync` (full+incremental) on the
 * embedded default (state in an embedded DynamoDB under a temporary --state-dir) while writers keep
 * changing the source for a few seconds, lets it end with --until caught-up, shows `redis-dts status`,
 * and proves the copy with DEBUG DIGEST and a key-by-key comparison. Uses the test harness, so it lives in the
 * checkout only (it is not part of the published CLI).
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { compareServers } from '../test/support/compare.ts';
import { startRedis, stopAllRedis } from '../test/support/redis-server.ts';
import { seedEveryType, seedManyKeys } from '../test/support/seed.ts';
import { startWriters } from '../test/support/writers.ts';

const cli = fileURLToPath(new URL('./redis-dts.ts', import.meta.url));
const stateDir = mkdtempSync(join(tmpdir(), 'redis-dts-demo-'));
let exitCode = 1;
try {
  // A backlog that holds the writes made while the full sync runs (the precheck checks this).
  const source = await startRedis({ args: ['--repl-backlog-size', '256mb'] });
  const target = await startRedis();
  console.log(`source redis-server on ${source.url}, destination on ${target.url} (both throwaway)`);
  const seeded = await seedEveryType(source.url);
  await seedManyKeys(source.url, { count: 200_000, valueBytes: 64, mixed: true, prefix: 'demo:' });
  console.log(
    `seeded ${seeded.keys.toLocaleString('en-US')} keys of every type in dbs 0, 1, 15, plus 200,000 mixed keys in db 0\n`,
  );

  const args = [
    'sync',
    '--source',
    source.url,
    '--target',
    target.url,
    '--until',
    'caught-up',
    '--state-dir',
    stateDir,
  ];
  console.log(
    'writers: INCR, LPUSH, APPEND, HINCRBY, EXPIRE, RENAME, MULTI/EXEC, EVAL… on the source for 5 s',
  );
  console.log(`$ redis-dts ${args.join(' ')}`);
  const writers = startWriters({ url: source.url, dbs: [0, 1], writers: 2 });
  const sync = spawn(process.execPath, [cli, ...args], { stdio: 'inherit' });
  const exited = once(sync, 'exit');
  await incrementalStarted(source.url);
  await new Promise((r) => setTimeout(r, 2000));
  const written = await writers.stop();
  console.log(
    `writers stopped after ${written.ops.toLocaleString('en-US')} writes; the sync ends once it has applied them`,
  );
  const [code] = (await exited) as [number | null];
  if (code !== 0) throw new Error(`redis-dts sync exited with ${code}`);
  // Keys the writers gave a short expiry are gone on both sides by now.
  await new Promise((r) => setTimeout(r, 600));

  console.log(`\n$ redis-dts status --state-dir ${stateDir}`);
  spawnSync(process.execPath, [cli, 'status', '--state-dir', stateDir], { stdio: 'inherit' });

  const c = await compareServers(source.url, target.url);
  console.log(`\nDEBUG DIGEST source ${c.digests.source}\nDEBUG DIGEST target ${c.digests.target}`);
  console.log(
    c.equal
      ? 'equal: every db, value and expiry, including every write made during the sync, arrived exactly once'
      : c.summary(),
  );
  exitCode = c.equal ? 0 : 1;
} catch (e) {
  console.error(`demo failed: ${(e as Error).message}`);
} finally {
  await stopAllRedis();
  rmSync(stateDir, { recursive: true, force: true });
}
process.exitCode = exitCode;

/** The sync's heartbeat key appears on the source when its incremental phase starts. */
async function incrementalStarted(url: string): Promise<void> {
  const client = new Redis(url);
  try {
    while ((await client.keys('redis-dts:heartbeat:*')).length === 0) {
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    client.disconnect();
  }
}

/**
 * `./dts demo`: a first run for newcomers, on this machine only. Starts two throwaway redis-servers,
 * seeds every data type into dbs 0, 1 and 15, runs the real `redis-dts sync` on the embedded default
 * (state in an embedded DynamoDB under a temporary --state-dir), shows `redis-dts status`, and proves
 * the copy with DEBUG DIGEST and a key-by-key comparison. Uses the test harness, so it lives in the
 * checkout only (it is not part of the published CLI).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareServers } from '../test/support/compare.ts';
import { startRedis, stopAllRedis } from '../test/support/redis-server.ts';
import { seedEveryType, seedManyKeys } from '../test/support/seed.ts';

const cli = fileURLToPath(new URL('./redis-dts.ts', import.meta.url));
const stateDir = mkdtempSync(join(tmpdir(), 'redis-dts-demo-'));
let exitCode = 1;
try {
  const source = await startRedis();
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
    '--sync-type',
    'full',
    '--state-dir',
    stateDir,
  ];
  console.log(`$ redis-dts ${args.join(' ')}`);
  const sync = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  if (sync.status !== 0) throw new Error(`redis-dts sync exited with ${sync.status}`);

  console.log(`\n$ redis-dts status --state-dir ${stateDir}`);
  spawnSync(process.execPath, [cli, 'status', '--state-dir', stateDir], { stdio: 'inherit' });

  const c = await compareServers(source.url, target.url);
  console.log(`\nDEBUG DIGEST source ${c.digests.source}\nDEBUG DIGEST target ${c.digests.target}`);
  console.log(c.equal ? 'equal: every db, value and expiry was copied exactly' : c.summary());
  exitCode = c.equal ? 0 : 1;
} catch (e) {
  console.error(`demo failed: ${(e as Error).message}`);
} finally {
  await stopAllRedis();
  rmSync(stateDir, { recursive: true, force: true });
}
process.exitCode = exitCode;

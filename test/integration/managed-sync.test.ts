import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, startCli, syncArgs, watchCli } from '../support/cli.ts';
import { assertSameData, serverDigest } from '../support/compare.ts';
import { type ManagedProfile, startManagedRedis } from '../support/managed-redis.ts';
import { stopAllRedis } from '../support/redis-server.ts';
import { seedManyKeys } from '../support/seed.ts';
import { startWriters } from '../support/writers.ts';

const dirs: string[] = [];
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'redis-dts-managed-'));
  dirs.push(d);
  return d;
}

afterAll(async () => {
  await stopAllRedis();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The writers run for seconds at full speed: the backlog must hold the catch-up. */
const BIG_BACKLOG = { configLines: ['repl-backlog-size 256mb'] };

/**
 * full+incremental through the real CLI from a source that looks like ElastiCache with replication
 * enabled by AWS support (PSYNC under an account-specific name; CONFIG, DEBUG, SYNC, REPLICAOF refused),
 * into a destination that looks like a managed service as it comes (PSYNC disabled as well), under the
 * non-idempotent writers; the digest (DEBUG under the test-only name) must be equal at the end.
 */
async function syncUnderWrites(profile: ManagedProfile, flags: string[]): Promise<string> {
  const source = await startManagedRedis(profile, BIG_BACKLOG);
  const target = await startManagedRedis({ psync: 'disabled' });
  for (const db of [0, 1]) {
    await seedManyKeys(source.url, { db, count: 20_000, mixed: true, prefix: `seed:${db}:` });
  }
  const writers = startWriters({ url: source.url, dbs: [0, 1], writers: 3 });
  const cli = watchCli(
    startCli(syncArgs(source.url, target.url, stateDir(), ['--until', 'caught-up', ...flags])),
  );
  await cli.until('incremental sync: applying changes');
  await sleep(1000);
  const stats = await writers.stop();
  expect(stats.ops).toBeGreaterThan(0);
  // Short-lived keys the writers made expire on the source before the comparison.
  await sleep(700);
  const r = await cli.done;
  expect(r.code, cli.output()).toBe(0);
  expect(cli.output()).toMatch(/catch-up: re-copying [1-9]\d* keys written during the full sync/);
  expect(cli.output()).toContain('verify: consistent');
  await assertSameData(source.url, target.url);
  return cli.output();
}

describe('managed source and destination (ElastiCache / MemoryDB as a client sees them)', () => {
  it('syncs full+incremental through a renamed PSYNC into a destination without CONFIG and DEBUG', async () => {
    await syncUnderWrites({ psync: { renamedTo: 'psync-ec-4b1d' } }, [
      '--source-psync-command',
      'psync-ec-4b1d',
    ]);
  }, 180_000);

  it('syncs with REPLCONF renamed as well', async () => {
    await syncUnderWrites(
      { psync: { renamedTo: 'psync-ec-77aa' }, replconf: { renamedTo: 'replconf-ec-77aa' } },
      ['--source-psync-command', 'psync-ec-77aa', '--source-replconf-command', 'replconf-ec-77aa'],
    );
  }, 180_000);

  it('without --source-psync-command the precheck fails naming it, and nothing is written', async () => {
    const source = await startManagedRedis({ psync: { renamedTo: 'psync-ec-0c0c' } });
    const target = await startManagedRedis({ psync: 'disabled' });
    await source.cli('SET', 'k', 'v');
    const before = await serverDigest(target.url);
    const r = await runCli(syncArgs(source.url, target.url, stateDir()));
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/PSYNC is renamed or disabled on the source/);
    expect(r.stderr).toMatch(/--source-psync-command NAME/);
    expect(r.stderr).toMatch(/--sync-type full/);
    expect(await serverDigest(target.url)).toBe(before);
  }, 60_000);
});

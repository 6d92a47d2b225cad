import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { copyKeyInParts } from '../../lib/fullsync/copy-key-in-parts.ts';
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
  // The scan reader re-copies what was written meanwhile; the RDB reader (auto's pick where PSYNC works)
  // needs no catch-up.
  expect(cli.output()).toMatch(
    /catch-up: re-copying [1-9]\d* keys written during the full sync|full sync: \d+ keys from the RDB/,
  );
  expect(cli.output()).toContain('verify: consistent');
  await assertSameData(source.url, target.url);
  return cli.output();
}

describe('managed source and destination (ElastiCache / MemoryDB as a client sees them)', () => {
  it('syncs full+incremental through a renamed PSYNC into a destination without CONFIG and DEBUG', async () => {
    const output = await syncUnderWrites({ psync: { renamedTo: 'psync-ec-4b1d' } }, [
      '--source-psync-command',
      'psync-ec-4b1d',
    ]);
    // auto takes the snapshot through the renamed PSYNC.
    expect(output).toMatch(/Full sync reader +Passed +rdb \(auto\): PSYNC permitted/);
    expect(output).toMatch(/full sync: \d+ keys from the RDB/);
    // What the precheck could not read on the destination is a warning with what to check, not a failure.
    expect(output).toMatch(
      /Destination bulk limit \(proto-max-bulk-len\) +Warning +CONFIG GET is not available/,
    );
    expect(output).toMatch(/parameter group/);
    expect(output).toMatch(/Result: Warning \(1 warning, \d+ passed\)/);
  }, 180_000);

  it('syncs with REPLCONF renamed as well', async () => {
    await syncUnderWrites(
      { psync: { renamedTo: 'psync-ec-77aa' }, replconf: { renamedTo: 'replconf-ec-77aa' } },
      // The Lambda windows' path this time (IncrementalWindow loops instead of the replicator).
      [
        '--source-psync-command',
        'psync-ec-77aa',
        '--source-replconf-command',
        'replconf-ec-77aa',
        '--incremental-mode',
        'lambda',
      ],
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

  it('copies a big key in parts and verifies it between servers without CONFIG and DEBUG', async () => {
    const [source, target] = await Promise.all([
      startManagedRedis({ psync: 'disabled' }),
      // The smallest limit Redis accepts, so a 3 MB hash must go in parts.
      startManagedRedis({ psync: 'disabled' }, { configLines: ['proto-max-bulk-len 1mb'] }),
    ]);
    const src = new Redis(source.url);
    const dst = new Redis(target.url);
    try {
      const fields: Buffer[] = [];
      for (let i = 0; i < 3000; i++) fields.push(Buffer.from(`f${i}`), randomBytes(1000));
      await src.hset('big:hash', ...fields);
      await src.pexpire('big:hash', 3_600_000);
      const result = await copyKeyInParts({
        source: src,
        target: dst,
        key: Buffer.from('big:hash'),
        pexpireAt: Number(await src.call('PEXPIRETIME', 'big:hash')),
        tempPrefix: 'redis-dts:tmp:managed:',
        maxCommandBytes: 256 * 1024,
      });
      expect(result.type).toBe('hash');
    } finally {
      src.disconnect();
      dst.disconnect();
    }
    await assertSameData(source.url, target.url);
    const verify = await runCli(['verify', '--source', source.url, '--target', target.url]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout + verify.stderr).toMatch(/consistent/);
  }, 60_000);

  it('a value above the hidden proto-max-bulk-len of a destination is named, with the fix', async () => {
    const source = await startManagedRedis({ psync: 'disabled' });
    const target = await startManagedRedis(
      { psync: 'disabled' },
      { configLines: ['proto-max-bulk-len 1mb'] },
    );
    const src = new Redis(source.url);
    await src.set('big:string', randomBytes(3 * 1024 * 1024));
    await src.set('small', 'v');
    src.disconnect();
    const r = await runCli([...syncArgs(source.url, target.url, stateDir()), '--sync-type', 'full']);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    // The destination answers `invalid bulk length` and closes the link; which of the two reaches the
    // client first depends on the kernel, and either way the error names the limit.
    const error = /\nerror: (.*)\nfix: (.*)\n/.exec(r.stderr);
    expect(error, r.stderr).not.toBeNull();
    expect(error![1]).toMatch(
      /"big:string": ERR Protocol error: invalid bulk length|closed the connection .*proto-max-bulk-len could not be read \(CONFIG is unavailable\) and 512 MB was assumed/,
    );
    expect(error![2]).toMatch(/proto-max-bulk-len.*parameter group/);
  }, 60_000);
});

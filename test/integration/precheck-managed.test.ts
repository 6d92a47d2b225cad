import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sourceAt, sourceShards } from '../../lib/orchestration/source-shards.ts';
import { stepEndpoints } from '../../lib/orchestration/step-endpoints.ts';
import { runPrecheck } from '../../lib/precheck/run-precheck.ts';
import type { PrecheckItem, PrecheckReport } from '../../lib/precheck/types.ts';
import { type EndpointSpecInput, parseTaskSpec } from '../../lib/task/spec.ts';
import { startManagedRedis } from '../support/managed-redis.ts';
import { startRedisCluster } from '../support/redis-cluster.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';

const ACL_PASSWORD = 'Man4ged-Secret';

function check(
  source: EndpointSpecInput,
  target: string,
  syncType = 'full+incremental',
): Promise<PrecheckReport> {
  const spec = parseTaskSpec({ source, target: { url: target }, syncType }, { mode: 'local' });
  return runPrecheck(spec, { sampleWriteRateMs: 50 });
}

function item(report: PrecheckReport, id: string): PrecheckItem {
  const found = report.items.find((i) => i.id === id);
  if (!found) throw new Error(`no item ${id} in ${report.items.map((i) => i.id).join(', ')}`);
  return found;
}

let renamed: RedisProcess;
let bothRenamed: RedisProcess;
let disabled: RedisProcess;
let plainTarget: RedisProcess;

beforeAll(async () => {
  [renamed, bothRenamed, disabled, plainTarget] = await Promise.all([
    // A backlog far above what the checks' own traffic could need: the items here are not about it.
    startManagedRedis({ psync: { renamedTo: 'psync-ec-5e5e' } }, { configLines: ['repl-backlog-size 64mb'] }),
    startManagedRedis({ psync: { renamedTo: 'psync-ec-6f6f' }, replconf: { renamedTo: 'replconf-ec-6f6f' } }),
    startManagedRedis({ psync: 'disabled' }),
    startRedis(),
  ]);
  for (const s of [renamed, bothRenamed, disabled]) await s.cli('SET', 'k', 'v');
});

afterAll(stopAllRedis);

describe('PSYNC permitted, on a source that renames or disables it', () => {
  it('renamed, and the name given: passed, checked under that name without sending PSYNC', async () => {
    const report = await check({ url: renamed.url, psyncCommand: 'psync-ec-5e5e' }, plainTarget.url);
    expect(item(report, 'source-psync')).toEqual({
      id: 'source-psync',
      title: 'PSYNC permitted on the source',
      status: 'passed',
      detail:
        "PSYNC and REPLCONF answer as themselves (PSYNC as 'psync-ec-5e5e') and user 'default' may run them " +
        '(ACL DRYRUN); PSYNC itself was not sent, so the source did not start a full resync',
    });
    expect(await renamed.cli('INFO', 'stats')).toMatch(/sync_full:0\r?\n/);
  });

  it('REPLCONF renamed too, both names given: passed', async () => {
    const report = await check(
      { url: bothRenamed.url, psyncCommand: 'psync-ec-6f6f', replconfCommand: 'replconf-ec-6f6f' },
      plainTarget.url,
    );
    expect(item(report, 'source-psync')).toMatchObject({
      status: 'passed',
      detail: expect.stringContaining("(PSYNC as 'psync-ec-6f6f', REPLCONF as 'replconf-ec-6f6f')"),
    });
  });

  it('renamed, and no name given: failed, naming --source-psync-command', async () => {
    const report = await check({ url: renamed.url }, plainTarget.url);
    expect(item(report, 'source-psync')).toMatchObject({
      status: 'failed',
      detail: expect.stringContaining('PSYNC is renamed or disabled on the source (rename-command)'),
      fix: expect.stringContaining('pass that name with --source-psync-command NAME (source.psyncCommand)'),
    });
    expect(item(report, 'source-psync').fix).toContain('--sync-type full');
  });

  it('REPLCONF renamed and its name not given: failed, naming --source-replconf-command', async () => {
    const report = await check({ url: bothRenamed.url, psyncCommand: 'psync-ec-6f6f' }, plainTarget.url);
    expect(item(report, 'source-psync')).toMatchObject({
      status: 'failed',
      detail: expect.stringMatching(/^REPLCONF is renamed or disabled on the source/),
      fix: expect.stringContaining('--source-replconf-command NAME'),
    });
  });

  it('disabled: failed with the cause, whatever name is given', async () => {
    const unnamed = item(await check({ url: disabled.url }, plainTarget.url), 'source-psync');
    expect(unnamed).toMatchObject({
      status: 'failed',
      detail: expect.stringContaining(
        'PSYNC is renamed or disabled on the source (rename-command): incremental sync cannot read the replication stream',
      ),
    });
    const named = item(
      await check({ url: disabled.url, psyncCommand: 'psync-ec-5e5e' }, plainTarget.url),
      'source-psync',
    );
    expect(named).toMatchObject({
      status: 'failed',
      detail:
        "the source knows no command 'psync-ec-5e5e' (--source-psync-command): the name is wrong, or PSYNC is disabled there",
      fix: expect.stringContaining('check the name with your provider and correct --source-psync-command'),
    });
  });

  it('a name that is another command: failed, saying which', async () => {
    const report = await check({ url: renamed.url, psyncCommand: 'get' }, plainTarget.url);
    expect(item(report, 'source-psync')).toMatchObject({
      status: 'failed',
      detail: "'get' (--source-psync-command) is not PSYNC on the source: it answered 'null'",
    });
    const ping = await check({ url: renamed.url, psyncCommand: 'ping' }, plainTarget.url);
    expect(item(ping, 'source-psync').detail).toBe(
      "'ping' (--source-psync-command) is not PSYNC on the source: it answered '?'",
    );
  });

  it('renamed, given, and an ACL user without +psync: failed naming the rule by its own name', async () => {
    await renamed.cli(
      'ACL',
      'SETUSER',
      'migrator',
      'reset',
      'on',
      `>${ACL_PASSWORD}`,
      '~*',
      '&*',
      '+@all',
      '-psync',
    );
    const url = renamed.url.replace('redis://', `redis://migrator:${ACL_PASSWORD}@`);
    const report = await check({ url, psyncCommand: 'psync-ec-5e5e' }, plainTarget.url);
    expect(item(report, 'source-psync')).toMatchObject({
      status: 'failed',
      detail: "ACL user 'migrator' may not run PSYNC on the source",
      fix: 'grant it: ACL SETUSER migrator +psync (or use a user with replication permission)',
    });
  });
});

describe('a managed destination (CONFIG and DEBUG refused)', () => {
  it('warns about what it cannot read, with the console setting to check, and fails nothing', async () => {
    const target = await startManagedRedis({ psync: 'disabled' });
    const report = await check({ url: renamed.url, psyncCommand: 'psync-ec-5e5e' }, target.url);
    const notPassed = report.items.filter((i) => i.status !== 'passed');
    expect(notPassed).toEqual([
      {
        id: 'target-bulk-limit',
        title: 'Destination bulk limit (proto-max-bulk-len)',
        status: 'warning',
        detail: expect.stringContaining(
          "CONFIG GET is not available on the destination (managed services such as ElastiCache and MemoryDB disable it), so its proto-max-bulk-len is unknown: redis-dts assumes Redis' default 512 MB",
        ),
        fix: expect.stringContaining(
          "check proto-max-bulk-len in the destination's parameter group (console: ElastiCache or MemoryDB → Parameter groups)",
        ),
      },
    ]);
    expect(report.status).toBe('warning');
    // What CONFIG would have told is read another way, and the report says how.
    expect(item(report, 'dbs-exist').detail).toContain(
      'destination CONFIG GET databases is unavailable, so each db was tried with SELECT',
    );
    expect(item(report, 'target-eviction').detail).toBe(
      'maxmemory-policy is noeviction: a full destination refuses writes with an error',
    );
  });
});

describe('a cluster source with a renamed PSYNC', () => {
  it("carries the name to every master: the precheck checks each, and each shard's endpoint has it", async () => {
    const cluster = await startRedisCluster({
      masters: 3,
      args: ['--rename-command', 'PSYNC', 'psync-ec-c1'],
    });
    try {
      const report = await check({ url: cluster.url, psyncCommand: 'psync-ec-c1' }, plainTarget.url);
      expect(item(report, 'source-psync')).toMatchObject({
        status: 'passed',
        detail: expect.stringMatching(
          /^on every master \(.*\), one PSYNC stream each: PSYNC and REPLCONF answer as themselves \(PSYNC as 'psync-ec-c1'\)/,
        ),
      });
      const spec = parseTaskSpec({
        source: { url: cluster.url, psyncCommand: 'psync-ec-c1' },
        target: { url: plainTarget.url },
      });
      const shards = await sourceShards(stepEndpoints(spec).source);
      expect(shards.map((s) => s.endpoint.port).sort()).toEqual(cluster.masters.map((m) => m.port).sort());
      for (const shard of shards) {
        expect(sourceAt(stepEndpoints(spec).source, shard.endpoint).replicationCommands).toEqual({
          psync: 'psync-ec-c1',
        });
        expect(shard.endpoint.replicationCommands).toEqual({ psync: 'psync-ec-c1' });
      }
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});

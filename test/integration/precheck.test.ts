import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { precheckCommand } from '../../lib/cli/precheck-command.ts';
import { UsageError } from '../../lib/cli/usage-error.ts';
import { aclRulesAllow, REPLICATION_COMMAND_CATEGORIES } from '../../lib/precheck/acl-rules.ts';
import { connectSide } from '../../lib/precheck/connect-side.ts';
import { restoreSample } from '../../lib/precheck/dump-compat.ts';
import { type RunPrecheckOptions, runPrecheck } from '../../lib/precheck/run-precheck.ts';
import type { PrecheckItem, PrecheckReport } from '../../lib/precheck/types.ts';
import { payloadRdbVersion, rdbVersionOfRelease } from '../../lib/redis/server-versions.ts';
import { parseTaskSpec, type TaskSpecInput } from '../../lib/task/spec.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';

const REQUIREPASS = 'Pre-Ch3ck-Secret';
const ACL_PASSWORD = 'Acl-Us3r-Secret';

type Input = Omit<TaskSpecInput, 'source' | 'target'> & { source: string; target: string };

function specOf(input: Input) {
  const { source, target, ...rest } = input;
  return parseTaskSpec({ ...rest, source: { url: source }, target: { url: target } }, { mode: 'local' });
}

/** A short write-rate sample: the tests assert what is found, not how long it takes. */
function check(input: Input, opts: RunPrecheckOptions = {}): Promise<PrecheckReport> {
  return runPrecheck(specOf(input), { sampleWriteRateMs: 50, ...opts });
}

function item(report: PrecheckReport, id: string): PrecheckItem {
  const found = report.items.find((i) => i.id === id);
  if (!found) throw new Error(`no item ${id} in ${report.items.map((i) => i.id).join(', ')}`);
  return found;
}

function aclUrl(server: RedisProcess, user: string): string {
  return `redis://${user}:${ACL_PASSWORD}@127.0.0.1:${server.port}`;
}

async function addUser(server: RedisProcess, user: string, ...rules: string[]): Promise<void> {
  await server.cli('ACL', 'SETUSER', user, 'reset', 'on', `>${ACL_PASSWORD}`, '~*', '&*', ...rules);
}

/** Keys the precheck may have left behind (it must leave none). */
async function leftovers(server: RedisProcess): Promise<string> {
  return server.cli('--scan', '--pattern', 'redis-dts:*');
}

let src: RedisProcess;
let dst: RedisProcess;

beforeAll(async () => {
  [src, dst] = await Promise.all([startRedis(), startRedis()]);
  for (let i = 1; i <= 5; i++) await src.cli('SET', `user:${i}`, `value ${i}`);
  await src.cli('HSET', 'profile:1', 'name', 'ada', 'lang', 'en');
});

afterAll(async () => {
  await stopAllRedis();
});

describe('a clean pair', () => {
  it('passes every item, leaves no key behind, and summarizes both servers', async () => {
    const report = await check({ source: src.url, target: dst.url });
    expect(report.items.filter((i) => i.status !== 'passed')).toEqual([]);
    expect(report.status).toBe('passed');
    expect(report.items.map((i) => i.id)).toEqual([
      'source-connect',
      'target-connect',
      'target-writable',
      'same-instance',
      'dump-compat',
      'target-bulk-limit',
      'target-memory',
      'target-eviction',
      'dbs-exist',
      'existing-keys',
      'source-psync',
      'repl-backlog',
      'full-sync-reader',
      'modules',
      'source-cluster',
      'target-cluster',
      'heartbeat-writable',
    ]);
    // auto, the default, takes the snapshot here, and says why.
    expect(item(report, 'full-sync-reader').detail).toMatch(/^rdb \(auto\): PSYNC permitted/);
    expect(report.fullSyncReader).toBe('rdb');
    expect(report.source).toMatchObject({
      address: `127.0.0.1:${src.port}`,
      version: expect.stringMatching(/^Redis \d+\.\d+\.\d+$/),
      role: 'master',
      clusterEnabled: false,
      dbs: [0],
    });
    expect(report.target).toMatchObject({ address: `127.0.0.1:${dst.port}`, dbs: [0] });
    expect(item(report, 'dump-compat').detail).toMatch(
      /RESTOREd a DUMP of key "(user:\d|profile:1)" of db 0/,
    );
    expect(item(report, 'modules').detail).toContain('no modules');
    expect(await leftovers(dst)).toBe('');
    expect(await leftovers(src)).toBe('');
    expect(await dst.cli('DBSIZE')).toBe('0');
  });

  it('skips the replication items for syncType full', async () => {
    const report = await check({ source: src.url, target: dst.url, syncType: 'full' });
    for (const id of ['source-psync', 'repl-backlog', 'heartbeat-writable']) {
      expect(item(report, id)).toMatchObject({ status: 'skipped', detail: expect.stringContaining('full') });
    }
    expect(report.status).toBe('passed');
  });
});

describe('connections', () => {
  let secured: RedisProcess;
  beforeAll(async () => {
    secured = await startRedis({ args: ['--requirepass', REQUIREPASS], password: REQUIREPASS });
  });

  it('a wrong password fails the connection item and skips what needs it, naming no password', async () => {
    const wrong = 'Not-The-Secret';
    const report = await check({
      source: `redis://:${wrong}@127.0.0.1:${secured.port}`,
      target: dst.url,
    });
    expect(item(report, 'source-connect')).toMatchObject({
      status: 'failed',
      detail: expect.stringContaining('wrong password (WRONGPASS)'),
      fix: expect.stringContaining('check the password'),
    });
    expect(item(report, 'target-connect').status).toBe('passed');
    expect(item(report, 'target-writable').status).toBe('passed');
    for (const id of ['same-instance', 'dump-compat', 'source-psync', 'heartbeat-writable', 'modules']) {
      expect(item(report, id)).toMatchObject({
        status: 'skipped',
        detail: expect.stringContaining('Source reachable and authenticated'),
      });
    }
    expect(report.status).toBe('failed');
    expect(report.source).toBeUndefined();
    expect(JSON.stringify(report)).not.toContain(wrong);
  });

  it('no password on a server that requires one is NOAUTH; the right one passes', async () => {
    const none = await check({
      source: src.url,
      target: `redis://127.0.0.1:${secured.port}`,
      syncType: 'full',
    });
    expect(item(none, 'target-connect')).toMatchObject({
      status: 'failed',
      detail: expect.stringContaining('requires a password but none was given (NOAUTH)'),
    });
    expect(item(none, 'existing-keys').status).toBe('skipped');

    const right = await check({ source: src.url, target: secured.url, syncType: 'full' });
    expect(item(right, 'target-connect').status).toBe('passed');
    expect(right.status).toBe('passed');
    expect(JSON.stringify(right)).not.toContain(REQUIREPASS);
  });

  it('a password variable that is not set is a Failed item with its fix', async () => {
    const report = await runPrecheck(
      parseTaskSpec({
        source: { url: src.url },
        target: { url: dst.url, passwordEnv: 'PRECHECK_TEST_UNSET_VARIABLE' },
      }),
      { sampleWriteRateMs: 50 },
    );
    expect(item(report, 'target-connect')).toMatchObject({
      status: 'failed',
      detail: 'target password variable PRECHECK_TEST_UNSET_VARIABLE is not set',
      fix: expect.stringContaining('export PRECHECK_TEST_UNSET_VARIABLE='),
    });
    expect(item(report, 'source-connect').status).toBe('passed');
  });

  it('an unreachable server is a Failed item, not an exception', async () => {
    const closed = await startRedis();
    const port = closed.port;
    await closed.stop();
    const report = await check({ source: src.url, target: `redis://127.0.0.1:${port}` });
    expect(item(report, 'target-connect')).toMatchObject({
      status: 'failed',
      detail: expect.stringContaining('ECONNREFUSED'),
    });
    expect(item(report, 'target-memory').status).toBe('skipped');
    expect(item(report, 'source-psync').status).toBe('passed');
  });
});

describe('destination writable', () => {
  it('an ACL user without write permission fails, and names the refused command', async () => {
    await addUser(dst, 'nowrite', '+@all', '-@write');
    const report = await check({ source: src.url, target: aclUrl(dst, 'nowrite') });
    expect(item(report, 'target-connect').status).toBe('passed');
    expect(item(report, 'target-writable')).toMatchObject({
      status: 'failed',
      detail: expect.stringMatching(
        /cannot write a key: .*ACL user 'nowrite' has no permission to run 'SET'/,
      ),
      fix: expect.stringContaining('ACL SETUSER nowrite +set'),
    });
    expect(JSON.stringify(report)).not.toContain(ACL_PASSWORD);
  });
});

describe('same instance', () => {
  it('fails when a db would be copied onto itself', async () => {
    const report = await check({ source: src.url, target: src.url, dbs: [0], syncType: 'full' });
    expect(item(report, 'same-instance')).toMatchObject({
      status: 'failed',
      detail: expect.stringMatching(
        /same server \(same run_id [0-9a-f]{8}…\): db 0 would be copied onto itself/,
      ),
      fix: expect.stringContaining('--db-map'),
    });
  });

  it('fails without explicit dbs for incremental sync, which follows every db', async () => {
    const report = await check({ source: src.url, target: src.url, dbMap: { '0': 1 } });
    expect(item(report, 'same-instance')).toMatchObject({
      status: 'failed',
      detail: expect.stringContaining('replay every db into itself'),
    });
  });

  it('allows different dbs of one server, and says so', async () => {
    const report = await check({ source: src.url, target: src.url, dbs: [0], dbMap: { '0': 1 } });
    expect(item(report, 'same-instance')).toMatchObject({
      status: 'passed',
      detail: expect.stringMatching(
        /same server .*allowed because every selected db is written into a different db \(0→1\)/,
      ),
    });
  });
});

describe('versions and DUMP compatibility', () => {
  it('the RDB version in a real DUMP matches the release table', async () => {
    const client = new Redis({ host: '127.0.0.1', port: src.port, lazyConnect: true });
    try {
      await client.connect();
      const payload = await client.dumpBuffer('user:1');
      const versionNum = Number(
        /redis_version:(\d+)\.(\d+)\.(\d+)/
          .exec(await client.info('server'))!
          .slice(1)
          .reduce((n, part) => n * 100 + Number(part), 0),
      );
      expect(payloadRdbVersion(payload!)).toBe(rdbVersionOfRelease(versionNum));
    } finally {
      client.disconnect();
    }
  });

  it('a payload newer than the destination reads is Failed, naming both versions', async () => {
    const spec = specOf({ source: src.url, target: dst.url });
    const [s, t] = await Promise.all([connectSide(spec, 'source'), connectSide(spec, 'target')]);
    try {
      const payload = Buffer.from((await s.side!.client.dumpBuffer('user:1'))!);
      // What a newer source writes: the same bytes with a later RDB version in the footer.
      payload.writeUInt16LE(99, payload.length - 10);
      const result = await restoreSample(s.side!, t.side!, { db: 0, key: Buffer.from('user:1'), payload });
      const version = `Redis ${s.side!.fields.redis_version}`;
      expect(result).toMatchObject({
        status: 'failed',
        detail: expect.stringContaining(
          `cannot RESTORE the source's DUMP payloads (source ${version}, destination ${version})`,
        ),
        fix: `use a destination of ${version} or newer (the destination must not be older than the source)`,
      });
      expect(result.detail).toMatch(/RDB 99\) was refused \(the destination reads RDB \d+ and older\)$/);
      expect(await leftovers(dst)).toBe('');
    } finally {
      s.side?.client.disconnect();
      t.side?.client.disconnect();
    }
  });

  it('an empty source has nothing to sample and passes on equal versions', async () => {
    const empty = await startRedis();
    try {
      const report = await check({ source: empty.url, target: dst.url, syncType: 'full' });
      expect(item(report, 'dump-compat')).toMatchObject({
        status: 'passed',
        detail: expect.stringContaining('no keys to test RESTORE with'),
      });
      expect(await empty.cli('DBSIZE')).toBe('0');
    } finally {
      await empty.stop();
    }
  });

  it('samples only keys the key filter lets through', async () => {
    const report = await check({
      source: src.url,
      target: dst.url,
      syncType: 'full',
      keyFilter: { include: ['profile:'] },
    });
    expect(item(report, 'dump-compat').detail).toContain('key "profile:1"');
  });
});

describe('destination memory and eviction', () => {
  async function withConfig(server: RedisProcess, settings: [string, string][], body: () => Promise<void>) {
    const saved: [string, string][] = [];
    for (const [name] of settings)
      saved.push([name, (await server.cli('CONFIG', 'GET', name)).split('\n')[1]!]);
    try {
      for (const [name, value] of settings) await server.cli('CONFIG', 'SET', name, value);
      await body();
    } finally {
      for (const [name, value] of saved) await server.cli('CONFIG', 'SET', name, value);
    }
  }

  it('maxmemory below the source used memory fails (and the destination then refuses writes)', async () => {
    await withConfig(dst, [['maxmemory', '102400']], async () => {
      const report = await check({ source: src.url, target: dst.url, syncType: 'full' });
      expect(item(report, 'target-memory')).toMatchObject({
        status: 'failed',
        detail: expect.stringMatching(/destination maxmemory 100 KB is below the source's used memory/),
        fix: expect.stringContaining('raise the destination'),
      });
      expect(item(report, 'target-writable')).toMatchObject({
        status: 'failed',
        detail: expect.stringContaining('OOM'),
      });
    });
  });

  it('free memory below 1.1 × the source used memory is a warning', async () => {
    const used = async (s: RedisProcess) =>
      Number(/used_memory:(\d+)/.exec(await s.cli('INFO', 'memory'))![1]);
    const [srcUsed, dstUsed] = [await used(src), await used(dst)];
    // Above the source's usage (no failure), but leaving less than 1.1 × it free.
    const maxmemory = srcUsed + Math.round(dstUsed / 2);
    await withConfig(dst, [['maxmemory', String(maxmemory)]], async () => {
      const report = await check({ source: src.url, target: dst.url, syncType: 'full' });
      expect(item(report, 'target-memory')).toMatchObject({
        status: 'warning',
        detail: expect.stringMatching(/free \(maxmemory .*, less than 1\.1 × the source's used memory/),
      });
      expect(report.status).toBe('warning');
    });
  });

  it('a policy other than noeviction is a warning that explains silent eviction', async () => {
    await withConfig(
      dst,
      [
        ['maxmemory-policy', 'allkeys-lru'],
        ['maxmemory', String(1024 ** 3)],
      ],
      async () => {
        const report = await check({ source: src.url, target: dst.url, syncType: 'full' });
        expect(item(report, 'target-eviction')).toMatchObject({
          status: 'warning',
          detail: expect.stringMatching(
            /allkeys-lru: when it reaches maxmemory the destination silently evicts keys/,
          ),
          fix: expect.stringContaining('CONFIG SET maxmemory-policy noeviction'),
        });
      },
    );
  });
});

describe('selected dbs', () => {
  let fourDbs: RedisProcess;
  let noConfig: RedisProcess;
  beforeAll(async () => {
    [fourDbs, noConfig] = await Promise.all([
      startRedis({ args: ['--databases', '4'] }),
      startRedis({ args: ['--databases', '4', '--rename-command', 'CONFIG', ''] }),
    ]);
  });

  it('a db the destination does not have fails (CONFIG GET databases)', async () => {
    const report = await check({ source: src.url, target: fourDbs.url, dbs: [5], syncType: 'full' });
    expect(item(report, 'dbs-exist')).toMatchObject({
      status: 'failed',
      detail: 'the destination has no db 5 (databases 4: dbs 0..3)',
    });
    // The missing db is not looked into for keys: that would only fail again.
    expect(item(report, 'existing-keys').status).toBe('passed');
  });

  it('a mapped db is named with its source db', async () => {
    const report = await check({
      source: src.url,
      target: fourDbs.url,
      dbs: [0],
      dbMap: { '0': 7 },
      syncType: 'full',
    });
    expect(item(report, 'dbs-exist').detail).toBe(
      'the destination has no db 7 (mapped from source db 0) (databases 4: dbs 0..3)',
    );
  });

  it('without CONFIG (managed services) each db is tried with SELECT instead', async () => {
    const report = await check({ source: src.url, target: noConfig.url, dbs: [0, 5], syncType: 'full' });
    expect(item(report, 'dbs-exist')).toMatchObject({
      status: 'failed',
      detail: expect.stringMatching(
        /the destination has no db 5 \(CONFIG GET databases is unavailable, so each db was tried with SELECT\)/,
      ),
    });
    expect(item(report, 'target-memory').status).toBe('passed');
  });

  it('a db the source does not have fails too', async () => {
    const report = await check({ source: fourDbs.url, target: dst.url, dbs: [6], syncType: 'full' });
    expect(item(report, 'dbs-exist').detail).toBe('the source has no db 6 (databases 4: dbs 0..3)');
  });
});

describe('existing keys', () => {
  beforeAll(async () => {
    for (let i = 1; i <= 12; i++) await dst.cli('-n', '2', 'SET', `old:${String(i).padStart(2, '0')}`, 'x');
  });
  afterAll(async () => {
    await dst.cli('-n', '2', 'FLUSHDB');
  });

  it('block fails and names up to ten keys', async () => {
    const report = await check({
      source: src.url,
      target: dst.url,
      dbs: [0],
      dbMap: { '0': 2 },
      syncType: 'full',
    });
    const found = item(report, 'existing-keys');
    expect(found).toMatchObject({
      status: 'failed',
      detail: expect.stringMatching(/^db 2 has 12 keys \(.*, …\): --existing-keys block refuses/),
      fix: expect.stringContaining('--existing-keys overwrite'),
    });
    expect(found.detail.match(/"old:\d\d"/g)).toHaveLength(10);
  });

  it('overwrite is a warning', async () => {
    const report = await check({
      source: src.url,
      target: dst.url,
      dbs: [0],
      dbMap: { '0': 2 },
      existingKeys: 'overwrite',
      syncType: 'full',
    });
    expect(item(report, 'existing-keys')).toMatchObject({
      status: 'warning',
      detail: expect.stringContaining(
        'with --existing-keys overwrite, keys the source also has are replaced',
      ),
    });
    expect(report.status).toBe('warning');
  });

  it('keys in dbs the task does not write are not counted', async () => {
    const report = await check({ source: src.url, target: dst.url, dbs: [0], syncType: 'full' });
    expect(item(report, 'existing-keys')).toMatchObject({
      status: 'passed',
      detail: 'destination db 0: empty',
    });
  });
});

describe('PSYNC permission', () => {
  let renamed: RedisProcess;
  beforeAll(async () => {
    renamed = await startRedis({ args: ['--rename-command', 'PSYNC', '', '--rename-command', 'MODULE', ''] });
    await renamed.cli('SET', 'k', 'v');
  });

  it('an ACL user without PSYNC fails, checked with ACL DRYRUN', async () => {
    await addUser(src, 'nopsync', '+@all', '-psync');
    const report = await check({ source: aclUrl(src, 'nopsync'), target: dst.url });
    expect(item(report, 'source-psync')).toMatchObject({
      status: 'failed',
      detail: "ACL user 'nopsync' may not run PSYNC on the source",
      fix: 'grant it: ACL SETUSER nopsync +psync (or use a user with replication permission)',
    });
  });

  it('a renamed PSYNC fails, checked without sending it', async () => {
    const report = await check({ source: renamed.url, target: dst.url });
    expect(item(report, 'source-psync')).toMatchObject({
      status: 'failed',
      detail: expect.stringContaining('PSYNC is renamed or disabled on the source (rename-command)'),
      fix: expect.stringContaining('--sync-type full'),
    });
  });

  it('a user that may not run ACL DRYRUN is a warning: it cannot be verified', async () => {
    await addUser(src, 'noadmin', '+@all', '-@admin');
    const report = await check({ source: aclUrl(src, 'noadmin'), target: dst.url });
    expect(item(report, 'source-psync')).toMatchObject({
      status: 'warning',
      detail: expect.stringMatching(/could not verify .*ACL is not available to this user \(NOPERM/),
    });
  });

  it('the source never saw a PSYNC, so it did not fork', async () => {
    const stats = await src.cli('INFO', 'stats');
    expect(stats).toMatch(/sync_full:0\r?\n/);
    expect(stats).toMatch(/sync_partial_err:0\r?\n/);
  });

  it("ACL GETUSER rules (Redis 6's fallback) are read as the server's own ACL DRYRUN reads them", async () => {
    const ruleSets = [
      ['+@all'],
      ['+@all', '-psync'],
      ['+@all', '-@admin'],
      ['+@all', '-@admin', '+psync'],
      ['+@read', '+psync', '+replconf'],
      ['+@dangerous'],
      ['+@all', '-@slow', '+replconf'],
      ['-@all', '+@read'],
    ];
    for (const rules of ruleSets) {
      await addUser(src, 'rules', ...rules);
      const getuser = (await src.cli('ACL', 'GETUSER', 'rules')).split('\n');
      const commands = getuser[getuser.indexOf('commands') + 1]!;
      for (const [cmd, ...args] of [
        ['PSYNC', '?', '-1'],
        ['REPLCONF', 'capa', 'eof'],
      ] as const) {
        const dryrun = (await src.cli('ACL', 'DRYRUN', 'rules', cmd, ...args)) === 'OK';
        expect([rules.join(' '), cmd, aclRulesAllow(commands, cmd, REPLICATION_COMMAND_CATEGORIES)]).toEqual([
          rules.join(' '),
          cmd,
          dryrun,
        ]);
      }
    }
  });

  it('MODULE disabled is tolerated: the modules are read from INFO', async () => {
    const report = await check({ source: renamed.url, target: dst.url, syncType: 'full' });
    expect(item(report, 'modules')).toMatchObject({
      status: 'passed',
      detail: 'no modules are loaded on the source (MODULE LIST is unavailable: read from INFO modules)',
    });
  });
});

describe('replication backlog', () => {
  let busy: RedisProcess;
  beforeAll(async () => {
    busy = await startRedis({ args: ['--repl-backlog-size', '16kb'] });
    await busy.cli('SET', 'k', 'v');
  });

  /** Runs the precheck while a client keeps writing 4 KB values to the source. */
  async function underWrites(): Promise<PrecheckReport> {
    const writer = new Redis({ host: '127.0.0.1', port: busy.port });
    let writing = true;
    const loop = (async () => {
      const value = 'x'.repeat(4096);
      for (let i = 0; writing; i++) await writer.set(`load:${i % 100}`, value);
    })();
    try {
      return await check(
        { source: busy.url, target: dst.url, syncType: 'incremental' },
        { sampleWriteRateMs: 300 },
      );
    } finally {
      writing = false;
      await loop;
      writer.disconnect();
    }
  }

  it('a backlog smaller than the writes of the sync window is a warning with the size to set', async () => {
    const report = await underWrites();
    const found = item(report, 'repl-backlog');
    expect(found).toMatchObject({
      status: 'warning',
      detail: expect.stringMatching(
        /^repl-backlog-size 16\.0 KB is below the .* needed: .*\(total_net_input_bytes over/,
      ),
      fix: expect.stringMatching(/^on the source: CONFIG SET repl-backlog-size \d+ /),
    });
    const size = Number(/CONFIG SET repl-backlog-size (\d+)/.exec(found.fix!)![1]);
    expect(size % (1024 * 1024)).toBe(0);
    expect(size).toBeGreaterThan(16 * 1024);
  });

  it('with an active backlog the rate comes from master_repl_offset', async () => {
    const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(busy.port)] });
    try {
      await vi.waitFor(
        async () => expect(await replica.cli('INFO', 'replication')).toContain('master_link_status:up'),
        { timeout: 20_000, interval: 50 },
      );
      const report = await underWrites();
      expect(item(report, 'repl-backlog')).toMatchObject({
        status: 'warning',
        detail: expect.stringContaining('(master_repl_offset over'),
      });
    } finally {
      await replica.stop();
    }
  });
});

describe('cluster destination', () => {
  let cluster: RedisProcess;
  beforeAll(async () => {
    cluster = await startRedis({ args: ['--cluster-enabled', 'yes'] });
    await cluster.cli('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    await vi.waitFor(async () => expect(await cluster.cli('CLUSTER', 'INFO')).toContain('cluster_state:ok'), {
      timeout: 20_000,
      interval: 50,
    });
  });

  it('reports the one-master layout (more masters: precheck-cluster.test.ts)', async () => {
    const report = await check({ source: src.url, target: cluster.url });
    expect(item(report, 'target-cluster')).toMatchObject({
      status: 'passed',
      detail: expect.stringContaining(
        `cluster destination, 1 master: 127.0.0.1:${cluster.port} (slots 0-16383, 0 replicas)`,
      ),
    });
    expect(report.target?.clusterEnabled).toBe(true);
  });

  it('a db other than 0 does not exist on a cluster', async () => {
    const report = await check({ source: src.url, target: cluster.url, dbs: [1], syncType: 'full' });
    expect(item(report, 'dbs-exist')).toMatchObject({
      status: 'failed',
      detail: 'the destination has no db 1 (cluster mode: db 0 only)',
    });
  });
});

describe('heartbeat', () => {
  it('an ACL user without write permission on the source fails', async () => {
    await addUser(src, 'reader', '+@all', '-@write');
    const report = await check({ source: aclUrl(src, 'reader'), target: dst.url });
    expect(item(report, 'heartbeat-writable')).toMatchObject({
      status: 'failed',
      detail: expect.stringMatching(/^cannot write a heartbeat key \(redis-dts:heartbeat:…\): .*'SET'/),
      fix: expect.stringContaining('incremental.heartbeat.enabled: false'),
    });
    // Reading is all the copy itself needs from this user.
    expect(item(report, 'dump-compat').status).toBe('passed');
  });

  it('is skipped when the heartbeat is off', async () => {
    const report = await check({
      source: aclUrl(src, 'reader'),
      target: dst.url,
      incremental: { heartbeat: { enabled: false } },
    });
    expect(item(report, 'heartbeat-writable')).toMatchObject({
      status: 'skipped',
      detail: 'the heartbeat is off (incremental.heartbeat.enabled: false)',
    });
  });
});

describe('redis-dts precheck', () => {
  async function run(argv: string[]): Promise<{ code: number; out: string }> {
    let out = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    try {
      return { code: await precheckCommand(argv), out };
    } finally {
      spy.mockRestore();
    }
  }

  it('prints the table and exits 1 when an item failed', async () => {
    const { code, out } = await run([
      '--source',
      src.url,
      '--target',
      src.url,
      '--dbs',
      '0',
      '--sync-type',
      'full',
    ]);
    expect(code).toBe(1);
    expect(out).toMatch(/^Item +Status +Detail$/m);
    expect(out).toMatch(
      /^Source and destination are different servers +Failed +source and destination are the same server/m,
    );
    expect(out).toMatch(/^ +fix: point the destination at another server/m);
    expect(out).toMatch(/^Result: Failed \(\d+ failed, .*passed, 3 skipped\)$/m);
  });

  it('--json prints the report; warnings exit 0; passwords come from the environment and are never printed', async () => {
    const secured = await startRedis({ args: ['--requirepass', REQUIREPASS], password: REQUIREPASS });
    vi.stubEnv('PRECHECK_TEST_TARGET_PW', REQUIREPASS);
    try {
      await secured.cli('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
      const { code, out } = await run([
        '--source',
        src.url,
        '--target',
        `redis://127.0.0.1:${secured.port}`,
        '--target-password-env',
        'PRECHECK_TEST_TARGET_PW',
        '--sync-type',
        'full',
        '--json',
      ]);
      expect(code).toBe(0);
      const report = JSON.parse(out) as PrecheckReport;
      expect(report.status).toBe('warning');
      expect(item(report, 'target-connect').status).toBe('passed');
      expect(item(report, 'target-eviction').status).toBe('warning');
      expect(out).not.toContain(REQUIREPASS);
    } finally {
      vi.unstubAllEnvs();
      await secured.stop();
    }
  });

  it('bad flags are usage errors', async () => {
    await expect(run(['--source', src.url, '--bogus'])).rejects.toBeInstanceOf(UsageError);
    await expect(run(['--help'])).resolves.toMatchObject({
      code: 0,
      out: expect.stringContaining('Usage: redis-dts precheck'),
    });
  });
});

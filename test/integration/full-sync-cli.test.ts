import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../lib/state/dynamo-client.ts';
import { collect, runCli, startCli } from '../support/cli.ts';
import { assertSameData, compareServers, keyCounts, serverDigest } from '../support/compare.ts';
import { freePort, type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { seedEveryType, seedManyKeys } from '../support/seed.ts';
import { hasOpenssl, makeTestCertificates, tlsServerArgs } from '../support/tls.ts';

const dirs: string[] = [];

/** `redis-dts sync --source … --target … --sync-type full` */
function fullSync(source: string, target: string): string[] {
  return ['sync', '--source', source, '--target', target, '--sync-type', 'full'];
}
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'redis-dts-state-'));
  dirs.push(d);
  return d;
}

afterAll(async () => {
  await stopAllRedis();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('redis-dts sync --sync-type full', () => {
  let source: RedisProcess;
  beforeAll(async () => {
    source = await startRedis();
    await seedEveryType(source.url);
  });

  let target: RedisProcess | undefined;
  afterEach(async () => {
    await target?.stop();
    target = undefined;
  });

  it('copies every type, encoding, db and TTL exactly into an empty destination', async () => {
    target = await startRedis();
    const r = await runCli([...fullSync(source.url, target.url), '--in-memory', '--progress', 'json']);
    expect(r.stderr).not.toContain('error:');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/full sync done: [\d,]+ keys/);
    await assertSameData(source.url, target.url);
    // progress went out as JSON lines (not a TTY); auto, the default, took the RDB
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('{'));
    expect(lines.some((l) => JSON.parse(l).msg?.startsWith("full sync: reading the source's RDB"))).toBe(
      true,
    );
  });

  it('block refuses a non-empty destination, names its keys, and writes nothing', async () => {
    target = await startRedis();
    await target.cli('SELECT', '1');
    await target.cli('-n', '1', 'SET', 'already:here', 'x');
    const before = await serverDigest(target.url);
    const r = await runCli([...fullSync(source.url, target.url), '--in-memory']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: precheck failed: Existing keys in the destination: db 1 has 1 key \("already:here"\): --existing-keys block refuses .*; nothing was written$/m,
    );
    expect(r.stderr).toMatch(/^fix: .*--existing-keys overwrite/m);
    expect(await serverDigest(target.url)).toBe(before);
    expect(await keyCounts(target.url)).toEqual({ 1: 1 });
  });

  it('overwrite warns first, then with --yes replaces keys of the same name and keeps the others', async () => {
    target = await startRedis();
    await target.cli('SET', 'str:int', 'old value');
    await target.cli('SET', 'only:on:target', 'stays');
    const args = [...fullSync(source.url, target.url), '--in-memory', '--existing-keys', 'overwrite'];
    const warned = await runCli(args);
    expect(warned.code).toBe(1);
    expect(warned.stderr).toMatch(
      /^error: precheck has 1 warning\(s\): Existing keys in the destination; nothing was written$/m,
    );
    expect(warned.stderr).toMatch(/^fix: .*--yes/m);
    expect(await target.cli('GET', 'str:int')).toBe('old value');

    const r = await runCli([...args, '--yes']);
    expect(r.code).toBe(0);
    expect(await target.cli('GET', 'only:on:target')).toBe('stays');
    await target.cli('DEL', 'only:on:target');
    await assertSameData(source.url, target.url);
  });

  it('copies only the selected dbs, mapped, and only the included prefixes', async () => {
    target = await startRedis();
    const r = await runCli([
      ...fullSync(source.url, target.url),
      '--in-memory',
      '--dbs',
      '0,1',
      '--db-map',
      '0:5,1:6',
      '--include-prefix',
      'user:',
      '--include-prefix',
      'order:',
      '--exclude-prefix',
      'user:skip',
    ]);
    expect(r.stderr).not.toContain('error:');
    expect(r.code).toBe(0);
    const counts = await keyCounts(target.url);
    expect(Object.keys(counts).map(Number).sort()).toEqual([5, 6]);
    for (const [sdb, tdb] of [
      [0, 5],
      [1, 6],
    ] as const) {
      const expected = (await source.cli('-n', String(sdb), '--scan', '--pattern', '*'))
        .split('\n')
        .filter((k) => (k.startsWith('user:') || k.startsWith('order:')) && !k.startsWith('user:skip'))
        .sort();
      const copied = (await target.cli('-n', String(tdb), '--scan', '--pattern', '*'))
        .split('\n')
        .filter(Boolean)
        .sort();
      expect(expected.length).toBeGreaterThan(0);
      expect(copied).toEqual(expected);
      for (const key of copied) {
        expect(await target.cli('-n', String(tdb), 'DEBUG', 'DIGEST-VALUE', key)).toBe(
          await source.cli('-n', String(sdb), 'DEBUG', 'DIGEST-VALUE', key),
        );
      }
    }
  });
});

describe('resume after kill -9', () => {
  it('continues from the checkpoint: earlier chunks are not read again, and the copy is exact', async () => {
    const source = await startRedis();
    const target = await startRedis();
    await seedManyKeys(source.url, { count: 60_000, valueBytes: 64 });
    const dir = stateDir();
    const args = [
      ...fullSync(source.url, target.url),
      '--state-dir',
      dir,
      '--chunk-keys',
      '200',
      '--progress',
      'json',
    ];

    // Throttled so the kill lands mid-copy; killed once progress shows half of the keys.
    const child = startCli([...args, '--max-keys-per-second', '8000']);
    let seen = '';
    await new Promise<void>((resolve) => {
      child.stderr?.on('data', (d: Buffer) => {
        seen += d.toString();
        // Only whole lines: a pipe may deliver a JSON line in two pieces.
        const last = seen
          .split('\n')
          .slice(0, -1)
          .filter((l) => l.includes('"keys"'))
          .pop();
        if (last && JSON.parse(last).keys >= 30_000) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    const killed = await collect(child);
    expect(killed.signal).toBe('SIGKILL');

    const taskId = `127.0.0.1-${source.port}-to-127.0.0.1-${target.port}`;
    const local = await openLocalStore({ stateDir: dir, taskId });
    const [cp] = (await local.store.listCheckpoints(taskId)).map((c) => c.value);
    await local.close();
    expect(cp?.done).toBe(false);
    expect(cp?.cursor).not.toBe('0');
    const readBeforeKill = cp!.keysRead;
    // Checkpoints trail the applied chunks by up to checkpointIntervalMs (more on a loaded machine).
    expect(readBeforeKill).toBeGreaterThanOrEqual(1_000);

    const second = await runCli(args);
    expect(second.stderr).not.toContain('error:');
    expect(second.code).toBe(0);
    const readThisRun = Number(/full sync done: ([\d,]+) keys/.exec(second.stdout)![1]!.replaceAll(',', ''));
    // SCAN may return a key twice across a resize, so allow a little slack but never a restart from zero.
    expect(readThisRun).toBeLessThanOrEqual(60_000 - readBeforeKill + 2_000);
    expect((await compareServers(source.url, target.url)).equal).toBe(true);
  });
});

describe('bad input: non-zero exit, one-line cause, nothing written', () => {
  let source: RedisProcess;
  let target: RedisProcess;
  beforeAll(async () => {
    source = await startRedis({ args: ['--requirepass', 's3cret-src'], password: 's3cret-src' });
    await source.cli('SET', 'k', 'v');
    await source.cli('ACL', 'SETUSER', 'nodump', 'on', '>nodump-pw', '~*', '+@all', '-dump');
    target = await startRedis();
  });
  afterEach(async () => {
    expect(await keyCounts(target.url)).toEqual({});
  });

  const cases: [string, () => string[], Record<string, string>, RegExp][] = [
    [
      'unreachable host',
      () => ['--source', 'redis://127.0.0.1:1', '--target', target.url],
      {},
      /^error: precheck failed: .*source 127\.0\.0\.1:1: connection refused/m,
    ],
    [
      'wrong password',
      () => ['--source', `redis://:wrong@127.0.0.1:${source.port}`, '--target', target.url],
      {},
      /^error: precheck failed: .*source 127\.0\.0\.1:\d+: wrong password \(WRONGPASS\)/m,
    ],
    [
      'missing password',
      () => ['--source', `redis://127.0.0.1:${source.port}`, '--target', target.url],
      {},
      /^error: precheck failed: .*source .*requires a password but none was given/m,
    ],
    [
      'ACL user without DUMP',
      () => [
        '--source',
        `redis://127.0.0.1:${source.port}`,
        '--source-password-env',
        'SRC_PW',
        '--target',
        target.url,
      ],
      { SRC_PW: 'nodump:nodump-pw' },
      /^error: precheck failed: .*ACL user 'nodump' has no permission to run 'DUMP'/m,
    ],
    [
      'malformed URL',
      () => ['--source', 'redis://host:99999', '--target', target.url],
      {},
      /^error: invalid task spec: source.url: .*invalid port 99999/m,
    ],
    [
      'unknown flag',
      () => ['--source', source.url, '--target', target.url, '--bogus'],
      {},
      /^error: unknown option '--bogus'/im,
    ],
    [
      'bad db list',
      () => ['--source', source.url, '--target', target.url, '--dbs', '0,x'],
      {},
      /^error: .*dbs\[1\]/im,
    ],
  ];
  for (const [name, args, env, pattern] of cases) {
    it(name, async () => {
      const r = await runCli(['sync', '--sync-type', 'full', '--in-memory', ...args()], env);
      expect(r.code === 1 || r.code === 2).toBe(true);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr).toMatch(/^fix: /m);
      expect(r.stderr).not.toMatch(/s3cret-src|nodump-pw| {4}at /);
    });
  }
});

describe('destination out of memory', () => {
  it('stops with a clear message that the destination is partially written', async () => {
    // The precheck passes (maxmemory is above the source's use) but other data on the destination
    // leaves too little room, so the writer itself meets OOM: the case a precheck cannot foresee.
    const source = await startRedis();
    await seedManyKeys(source.url, { count: 20_000, valueBytes: 512 });
    const sourceUsed = Number(/used_memory:(\d+)/.exec(await source.cli('INFO', 'memory'))![1]);
    const target = await startRedis({
      args: ['--maxmemory', String(sourceUsed + 4_000_000), '--maxmemory-policy', 'noeviction'],
    });
    await seedManyKeys(target.url, { db: 9, count: 12_000, valueBytes: 512 });
    const r = await runCli([...fullSync(source.url, target.url), '--in-memory', '--dbs', '0', '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: target 127\.0\.0\.1:\d+ is out of memory .*partially written\b/m);
    expect(r.stderr).toMatch(/^fix: raise maxmemory/m);
  });
});

describe('big keys', () => {
  let source: RedisProcess;
  beforeAll(async () => {
    source = await startRedis();
    await seedEveryType(source.url, { big: true });
  });

  it('copies the 1M-field hash and the 1M-element list with one RESTORE each when the memory budget holds them', async () => {
    const target = await startRedis();
    const r = await runCli([
      ...fullSync(source.url, target.url),
      '--in-memory',
      '--progress',
      'json',
      '--memory-budget',
      '4gb',
    ]);
    expect(r.stderr).not.toContain('error:');
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain('in parts');
    await assertSameData(source.url, target.url);
    await target.stop();
  });

  it('copies keys whose DUMP exceeds the destination proto-max-bulk-len in parts, exactly', async () => {
    const target = await startRedis({ args: ['--proto-max-bulk-len', '1mb'] });
    // A destination limit below the source's is a precheck warning (an APPEND could outgrow it there).
    const r = await runCli([
      ...fullSync(source.url, target.url),
      '--in-memory',
      '--progress',
      'json',
      '--yes',
    ]);
    expect(r.stderr).toMatch(/Destination bulk limit \(proto-max-bulk-len\)\s+Warning/);
    expect(r.stderr).not.toContain('error:');
    expect(r.code).toBe(0);
    const inParts = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l).msg as string | undefined)
      .filter((m) => m?.includes('in parts'));
    expect(inParts).toEqual(
      expect.arrayContaining([expect.stringContaining('big:hash'), expect.stringContaining('big:list')]),
    );
    await assertSameData(source.url, target.url);
    expect(await target.cli('--scan', '--pattern', 'redis-dts:tmp:*')).toBe('');
    await target.stop();
  });
});

describe('status and stop while a sync runs', () => {
  it('shows the running task, stops it cleanly on request, and a rerun finishes the copy', async () => {
    const source = await startRedis();
    const target = await startRedis();
    await seedManyKeys(source.url, { count: 40_000, valueBytes: 32 });
    const dir = stateDir();
    const args = [
      ...fullSync(source.url, target.url),
      '--state-dir',
      dir,
      '--chunk-keys',
      '200',
      '--progress',
      'json',
    ];
    const taskId = `127.0.0.1-${source.port}-to-127.0.0.1-${target.port}`;

    // Slow enough (20 s) that status and stop, each a CLI start, land while it copies on a busy machine.
    const child = startCli([...args, '--max-keys-per-second', '2000']);
    const done = collect(child);
    await new Promise<void>((resolve) => {
      child.stderr?.on('data', (d: Buffer) => {
        if (d.toString().includes('"keys"')) resolve();
      });
    });
    const status = await runCli(['status', '--state-dir', dir]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`task     ${taskId}`);
    expect(status.stdout).toMatch(/status {3}running, phase full-sync/);

    const stop = await runCli(['stop', taskId, '--state-dir', dir]);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain('stop requested');
    const stopped = await done;
    expect(stopped.code).toBe(130);
    expect(stopped.stdout).toContain('full sync stopped');
    expect(Number((await target.cli('DBSIZE')).trim())).toBeLessThan(40_000);

    const after = await runCli(['status', taskId, '--state-dir', dir]);
    expect(after.stdout).toMatch(/status {3}stopped/);

    const rerun = await runCli(args);
    expect(rerun.code).toBe(0);
    await assertSameData(source.url, target.url);
  });
});

describe.skipIf(!hasOpenssl())('over TLS', () => {
  it('syncs from a rediss:// source verified with --source-tls-ca into a rediss:// target with --target-tls-insecure', async () => {
    const certs = makeTestCertificates();
    dirs.push(certs.dir);
    const srcTls = await freePort();
    const dstTls = await freePort();
    const source = await startRedis({ args: tlsServerArgs(certs, srcTls) });
    const target = await startRedis({ args: tlsServerArgs(certs, dstTls) });
    await seedEveryType(source.url);
    const r = await runCli([
      'sync',
      '--sync-type',
      'full',
      '--in-memory',
      '--source',
      `rediss://localhost:${srcTls}`,
      '--source-tls-ca',
      certs.ca,
      '--target',
      `rediss://127.0.0.1:${dstTls}`,
      '--target-tls-insecure',
    ]);
    expect(r.stderr).not.toContain('error:');
    expect(r.code).toBe(0);
    await assertSameData(source.url, target.url);
  });

  it('refuses an untrusted certificate with a clear message', async () => {
    const certs = makeTestCertificates();
    dirs.push(certs.dir);
    const srcTls = await freePort();
    const source = await startRedis({ args: tlsServerArgs(certs, srcTls) });
    const target = await startRedis();
    await source.cli('SET', 'k', 'v');
    const r = await runCli([
      'sync',
      '--sync-type',
      'full',
      '--in-memory',
      '--source',
      `rediss://localhost:${srcTls}`,
      '--target',
      target.url,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: precheck failed: .*source localhost:\d+ \(tls\): the server's TLS certificate is not trusted/m,
    );
    expect(await keyCounts(target.url)).toEqual({});
  });
});

describe('verification after the copy', () => {
  it('fails the task, naming the keys, when the source keeps changing under a full-only sync', async () => {
    const source = await startRedis();
    const target = await startRedis();
    await seedManyKeys(source.url, { count: 20_000, valueBytes: 32 });
    const writer = new Redis(source.port, '127.0.0.1');
    let writing = true;
    const writes = (async () => {
      while (writing) await writer.incr('hot:counter');
    })();
    try {
      const r = await runCli([
        ...fullSync(source.url, target.url),
        '--in-memory',
        '--max-keys-per-second',
        '10000',
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error: verification after the copy found differences: .*hot:counter/m);
      expect(r.stderr).toMatch(/^fix: if the source was written during the copy, differences are expected/m);
    } finally {
      writing = false;
      await writes;
      writer.disconnect();
    }
  });
});

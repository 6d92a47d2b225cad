import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type ProcessView,
  SYNC_MALLOC_ENV,
  SYNC_V8_FLAGS,
  syncReexec,
  TUNED_ENV,
} from '../../lib/cli/sync-process.ts';

const base: ProcessView = {
  execPath: '/usr/bin/node',
  execArgv: [],
  script: '/app/bin/redis-dts.ts',
  args: ['sync', '--source', 'redis://s', '--target', 'redis://t'],
  env: { PATH: '/bin' },
  platform: 'linux',
  compileCacheDir: '/tmp/cc',
};

describe('syncReexec', () => {
  it('re-executes sync with the young-generation cap and the malloc settings, arguments unchanged', () => {
    const plan = syncReexec(base);
    expect(plan?.argv).toEqual([
      '/usr/bin/node',
      '--max-semi-space-size=16',
      '--heap-growing-percent=20',
      '/app/bin/redis-dts.ts',
      'sync',
      '--source',
      'redis://s',
      '--target',
      'redis://t',
    ]);
    expect(plan?.env).toEqual({
      PATH: '/bin',
      ...SYNC_MALLOC_ENV,
      NODE_COMPILE_CACHE: '/tmp/cc',
      [TUNED_ENV]: '1',
    });
  });

  it("keeps the user's own node flags and environment", () => {
    const plan = syncReexec({
      ...base,
      execArgv: ['--max-semi-space-size=32', '--inspect'],
      env: { MALLOC_ARENA_MAX: '8', NODE_COMPILE_CACHE: '/var/cache/node' },
    });
    expect(plan?.argv.slice(0, 5)).toEqual([
      '/usr/bin/node',
      '--heap-growing-percent=20',
      '--max-semi-space-size=32',
      '--inspect',
      '/app/bin/redis-dts.ts',
    ]);
    expect(plan?.env.MALLOC_ARENA_MAX).toBe('8');
    expect(plan?.env.NODE_COMPILE_CACHE).toBe('/var/cache/node');
    expect(syncReexec({ ...base, env: { NODE_OPTIONS: '--max-semi-space-size=4' } })?.argv[2]).toBe(
      '/app/bin/redis-dts.ts',
    );
  });

  it('leaves other commands, help, a tuned process and other platforms alone', () => {
    expect(syncReexec({ ...base, args: ['status'] })).toBeUndefined();
    expect(syncReexec({ ...base, args: ['sync', '--help'] })).toBeUndefined();
    expect(syncReexec({ ...base, env: { [TUNED_ENV]: '1' } })).toBeUndefined();
    expect(syncReexec({ ...base, platform: 'darwin' })).toBeUndefined();
  });
});

describe('reexecForSync', () => {
  const dir = mkdtempSync(join(tmpdir(), 'redis-dts-reexec-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.runIf(process.platform === 'linux')('replaces the process in place (same pid) with the settings', () => {
    const script = join(dir, 'probe.ts');
    writeFileSync(
      script,
      `import { reexecForSync } from ${JSON.stringify(new URL('../../lib/cli/sync-process.ts', import.meta.url).pathname)};\n` +
        'const before = process.env.PID_BEFORE ?? String(process.pid);\n' +
        'process.env.PID_BEFORE = before;\n' +
        'reexecForSync();\n' +
        'console.log(JSON.stringify({ before, pid: process.pid, execArgv: process.execArgv, arena: process.env.MALLOC_ARENA_MAX, argv: process.argv.slice(2) }));\n',
    );
    const env = { ...process.env };
    delete env[TUNED_ENV];
    delete env.NODE_OPTIONS;
    delete env.MALLOC_ARENA_MAX;
    const out = JSON.parse(
      execFileSync(process.execPath, [script, 'sync', '--yes'], { env, encoding: 'utf8' }),
    );
    expect(out.pid).toBe(Number(out.before));
    expect(out.execArgv).toEqual(['--max-semi-space-size=16', '--heap-growing-percent=20']);
    expect(out.arena).toBe(SYNC_MALLOC_ENV.MALLOC_ARENA_MAX);
    expect(out.argv).toEqual(['sync', '--yes']);
  });
});

describe('the Fargate replicator image', () => {
  it('runs with the same memory settings as `redis-dts sync`', () => {
    const dockerfile = readFileSync(
      new URL('../../functions/replicator/Dockerfile', import.meta.url),
      'utf8',
    );
    const entrypoint = /^ENTRYPOINT (.*)$/m.exec(dockerfile)?.[1] ?? '';
    for (const flag of SYNC_V8_FLAGS) expect(entrypoint).toContain(`"${flag}"`);
    for (const [k, v] of Object.entries(SYNC_MALLOC_ENV))
      expect(dockerfile).toMatch(new RegExp(`^ENV .*\\b${k}=${v}\\b`, 'm'));
  });
});

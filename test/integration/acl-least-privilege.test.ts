import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDtsError } from '../../lib/errors.ts';
import { runPrecheck } from '../../lib/precheck/run-precheck.ts';
import { MINIMAL_ACL_RULES } from '../../lib/redis/minimal-acl.ts';
import { parseRedisUrl } from '../../lib/redis/url.ts';
import { captureStart } from '../../lib/replication/capture-start.ts';
import { parseTaskSpec } from '../../lib/task/spec.ts';
import { runCli, startCli, syncArgs, watchCli } from '../support/cli.ts';
import { assertSameData } from '../support/compare.ts';
import { startManagedRedis } from '../support/managed-redis.ts';
import { type RedisProcess, stopAllRedis } from '../support/redis-server.ts';
import { seedEveryType } from '../support/seed.ts';
import { startWriters } from '../support/writers.ts';

const PSYNC_NAME = 'psync-ec-acl1';
const PASSWORD = 'Least-Priv1lege';
const dirs: string[] = [];
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'redis-dts-acl-'));
  dirs.push(d);
  return d;
}

afterAll(async () => {
  await stopAllRedis();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type Mode = keyof (typeof MINIMAL_ACL_RULES)['source'];

/** `ACL SETUSER <user> reset on >password <rules>`, and the URL that logs in as that user. */
async function user(server: RedisProcess, name: string, rules: string): Promise<string> {
  await server.cli('ACL', 'SETUSER', name, 'reset', 'on', `>${PASSWORD}`, ...rules.split(' '));
  return server.url.replace('redis://', `redis://${name}:${PASSWORD}@`);
}

/** The rules of a minimal list one at a time (the key pattern and the reset to nothing stay). */
function eachRule(rules: string): string[] {
  return rules.split(' ').filter((r) => r !== '~*' && r !== '-@all');
}

function without(rules: string, rule: string): string {
  return rules
    .split(' ')
    .filter((r) => r !== rule)
    .join(' ');
}

/** What an error names for a missing rule: the command itself, or (for a category) the command refused. */
function named(rule: string): RegExp {
  return rule.startsWith('+@')
    ? /NOPERM|may not run|has no permission/
    : new RegExp(`'?${rule.slice(1)}'?`, 'i');
}

function flagsFor(mode: Mode): string[] {
  return mode === 'full'
    ? ['--sync-type', 'full']
    : ['--until', 'caught-up', '--source-psync-command', PSYNC_NAME];
}

describe('least-privilege ACL users (README "ACL users"), on servers with the managed profile', () => {
  let source: RedisProcess;
  beforeAll(async () => {
    source = await startManagedRedis(
      { psync: { renamedTo: PSYNC_NAME } },
      { configLines: ['repl-backlog-size 64mb'] },
    );
    await seedEveryType(source.url);
  });

  it('full only: the minimal users copy everything', async () => {
    const target = await startManagedRedis({ psync: 'disabled' });
    const src = await user(source, 'src-full', MINIMAL_ACL_RULES.source.full);
    const dst = await user(target, 'dst-full', MINIMAL_ACL_RULES.target.full);
    const r = await runCli(syncArgs(src, dst, stateDir(), flagsFor('full')));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('verify: consistent');
    await assertSameData(source.url, target.url);
  }, 60_000);

  it('one rule fewer on the replication link: the sync fails naming it', async () => {
    // Before the PSYNC-mode test: while the source has no backlog, the start offset is taken with
    // PSYNC, so the refusal comes before the full sync.
    const target = await startManagedRedis({ psync: 'disabled' });
    const dst = await user(target, 'dst-psync', MINIMAL_ACL_RULES.target.psync);
    const noPsync = await user(source, 'src-no-psync', without(MINIMAL_ACL_RULES.source.psync, '+psync'));
    const r = await runCli(syncArgs(noPsync, dst, stateDir(), flagsFor('psync')));
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      /error: .*PSYNC \(sent as 'psync-ec-acl1'\): ACL user 'src-no-psync' may not run 'PSYNC'/,
    );
    expect(r.stderr).toMatch(/fix: grant it: ACL SETUSER src-no-psync \+psync \+replconf/);
    // The same first step in-process for REPLCONF, refused during the handshake.
    await user(source, 'src-no-replconf', without(MINIMAL_ACL_RULES.source.psync, '+replconf'));
    const ep = {
      ...parseRedisUrl(source.url, 'source', { password: PASSWORD }),
      username: 'src-no-replconf',
      replicationCommands: { psync: PSYNC_NAME },
    };
    const e = await captureStart(ep).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isDtsError(e) && e.code, String(e)).toBe('NO_PERMISSION');
    expect((e as Error).message).toMatch(/REPLCONF: ACL user 'src-no-replconf' may not run 'REPLCONF'/);
  }, 60_000);

  it('PSYNC mode: the minimal users sync full+incremental under the writers', async () => {
    const target = await startManagedRedis({ psync: 'disabled' });
    const src = await user(source, 'src-psync', MINIMAL_ACL_RULES.source.psync);
    const dst = await user(target, 'dst-psync', MINIMAL_ACL_RULES.target.psync);
    const writers = startWriters({ url: source.url, dbs: [0, 1], writers: 2, prefix: 'acl:' });
    const cli = watchCli(startCli(syncArgs(src, dst, stateDir(), flagsFor('psync'))));
    await cli.until('incremental sync: applying changes');
    await new Promise((r) => setTimeout(r, 500));
    expect((await writers.stop()).ops).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 700));
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(cli.output()).toContain('verify: consistent');
    await assertSameData(source.url, target.url);
  }, 90_000);

  it('one rule fewer: the precheck fails, naming the missing command', async () => {
    const target = await startManagedRedis({ psync: 'disabled' });
    // Rules only the replication link itself uses: PSYNC permission is read with ACL DRYRUN, which a
    // least-privilege user may not run (the item then warns), so they are proven by the run below.
    const atRunTime = new Set(['+psync', '+replconf']);
    for (const mode of ['full', 'psync'] as const) {
      for (const side of ['source', 'target'] as const) {
        const rules = MINIMAL_ACL_RULES[side][mode];
        for (const rule of eachRule(rules).filter((r) => !(side === 'source' && atRunTime.has(r)))) {
          const reduced = without(rules, rule);
          const url = await user(side === 'source' ? source : target, 'reduced', reduced);
          const other = await user(
            side === 'source' ? target : source,
            'complete',
            MINIMAL_ACL_RULES[side === 'source' ? 'target' : 'source'][mode],
          );
          const spec = parseTaskSpec({
            source: { url: side === 'source' ? url : other, psyncCommand: PSYNC_NAME },
            target: { url: side === 'source' ? other : url },
            syncType: mode === 'full' ? 'full' : 'full+incremental',
          });
          const report = await runPrecheck(spec, { sampleWriteRateMs: 50 });
          const failed = report.items.filter((i) => i.status === 'failed');
          const what = `${side} ${mode} without ${rule}`;
          expect(failed.length, `${what}: ${JSON.stringify(report.items)}`).toBeGreaterThan(0);
          expect(`${failed[0]!.detail} ${failed[0]!.fix}`, what).toMatch(named(rule));
        }
      }
    }
  }, 60_000);

  it('the README lists exactly these rules', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const side of ['source', 'target'] as const) {
      for (const mode of ['full', 'psync', 'notifications'] as const) {
        expect(readme, `${side} ${mode}`).toContain(
          `ACL SETUSER <user> on >… ${MINIMAL_ACL_RULES[side][mode]}`,
        );
      }
    }
  });
});

describe('least-privilege ACL users for the notifications reader (a source without PSYNC)', () => {
  it('the minimal users sync full+notifications under the writers to equal data', async () => {
    const source = await startManagedRedis(
      { psync: 'disabled' },
      { configLines: ['notify-keyspace-events KEA'] },
    );
    const target = await startManagedRedis({ psync: 'disabled' });
    await seedEveryType(source.url);
    const src = await user(source, 'src-notify', MINIMAL_ACL_RULES.source.notifications);
    const dst = await user(target, 'dst-notify', MINIMAL_ACL_RULES.target.notifications);
    const writers = startWriters({ url: source.url, dbs: [0, 1], writers: 2, prefix: 'acl:' });
    const flags = ['--until', 'caught-up', '--incremental-reader', 'notifications'];
    const cli = watchCli(startCli(syncArgs(src, dst, stateDir(), flags)));
    await cli.until('incremental sync');
    await new Promise((r) => setTimeout(r, 1000));
    expect((await writers.stop()).ops).toBeGreaterThan(0);
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    // Without the probe's writes (OCCASIONAL_ACL_RULES) the events item can only warn, and leaves no key.
    expect(cli.output()).toMatch(/the probe could not write/);
    await assertSameData(source.url, target.url);
  }, 120_000);
});

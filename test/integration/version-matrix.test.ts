import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, startCli, syncArgs, watchCli } from '../support/cli.ts';
import { assertSameData, keyCounts } from '../support/compare.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { seedEveryType } from '../support/seed.ts';
import { SERVER_BUILDS, type ServerBuild, serverBuild } from '../support/server-builds.ts';
import { startWriters, type WritersOptions } from '../support/writers.ts';

/**
 * Every server version against every other: for each source → destination pair where the destination
 * is not older, the exactness scenario on a small dataset (every type seeded, a full sync, a kill -9
 * in the incremental sync and a resume, under the non-idempotent writers with relative expiries, the
 * task's Verify, `redis-dts verify --ttl-tolerance-ms 20`, DEBUG DIGEST and key by key); newer → older
 * where the DUMP format allows it (same RDB version), and the precheck's named refusal where it does not.
 */

const dirs: string[] = [];
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'redis-dts-matrix-'));
  dirs.push(d);
  return d;
}

afterAll(async () => {
  await stopAllRedis();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A relative expiry of a pre-7.0 source is placed within the clock estimate; README says how close. */
const RELATIVE_TTL_TOLERANCE_MS = 20;
const DBS = [0, 1];
/** Paced, so that three pairs side by side leave the machine's two cores room for the tasks themselves. */
const WRITERS: Omit<WritersOptions, 'url'> = { dbs: DBS, writers: 2, keys: 50, ratePerWriter: 250 };

/**
 * Pairs run three at a time (most of a pair's time is waiting: CLI start-up, the precheck's one-second
 * write-rate sample, the quiet second before `--until caught-up` ends); the timeout counts the wait.
 */
const SIDE_BY_SIDE = 3;
const PAIR_TIMEOUT_MS = 300_000;
let running = 0;
const queued: (() => void)[] = [];
async function inTurn(fn: () => Promise<void>): Promise<void> {
  while (running >= SIDE_BY_SIDE) await new Promise<void>((r) => queued.push(r));
  running++;
  try {
    await fn();
  } finally {
    running--;
    queued.shift()?.();
  }
}

function older(a: ServerBuild, b: ServerBuild): boolean {
  return a.version[0] < b.version[0] || (a.version[0] === b.version[0] && a.version[1] < b.version[1]);
}

/** The test, or a skipped one whose name says which binary is absent. */
function pairTest(source: ServerBuild, target: ServerBuild, what: string) {
  const absent = [source, target].filter((b) => !b.present).map((b) => b.binary);
  const name = `${source.name} → ${target.name}: ${what}`;
  return absent.length === 0
    ? (fn: () => Promise<void>) => it.concurrent(name, () => inTurn(fn), PAIR_TIMEOUT_MS)
    : (fn: () => Promise<void>) =>
        it.skip(`${name} (skipped: ${absent.join(', ')} absent on this machine)`, fn, PAIR_TIMEOUT_MS);
}

async function startPair(source: ServerBuild, target: ServerBuild): Promise<[RedisProcess, RedisProcess]> {
  return Promise.all([
    // The writers run during the whole task: the default 1 MB backlog would not hold the catch-up.
    startRedis({ binary: source.binary, args: ['--repl-backlog-size', '64mb'] }),
    startRedis({ binary: target.binary }),
  ]);
}

/**
 * Full sync of every type, then incremental under the writers; killed with -9 while it applies, run
 * again until caught up. Returns the resumed run's output.
 */
async function syncWithKillAndResume(
  source: RedisProcess,
  target: RedisProcess,
  writers: Omit<WritersOptions, 'url'>,
): Promise<string> {
  await seedEveryType(source.url, { dbs: DBS });
  const w = startWriters({ url: source.url, ...writers });
  const state = stateDir();
  const first = watchCli(startCli(syncArgs(source.url, target.url, state)));
  await first.until('incremental sync: applying changes');
  await sleep(300);
  first.child.kill('SIGKILL');
  const killed = await first.done;
  expect(killed.signal, first.output()).toBe('SIGKILL');

  const resumed = watchCli(startCli(syncArgs(source.url, target.url, state, ['--until', 'caught-up'])));
  await resumed.until('incremental sync: applying changes');
  // Long enough for heartbeats to show the stream live, so relative expiries are placed, not re-copied.
  await sleep(1200);
  const stats = await w.stop();
  expect(stats.ops).toBeGreaterThan(0);
  // The writers' shortest expiries (500 ms at most) pass on both sides before the comparisons.
  await sleep(700);
  const r = await resumed.done;
  expect(r.code, resumed.output()).toBe(0);
  expect(resumed.output()).toContain("from the destination's marker");
  expect(resumed.output()).toContain('verify: consistent');
  return resumed.output();
}

async function verifyCli(source: RedisProcess, target: RedisProcess): Promise<void> {
  const r = await runCli([
    'verify',
    '--source',
    source.url,
    '--target',
    target.url,
    '--dbs',
    DBS.join(','),
    '--ttl-tolerance-ms',
    String(RELATIVE_TTL_TOLERANCE_MS),
  ]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout + r.stderr).toMatch(/^verify: consistent/m);
}

const pairs = SERVER_BUILDS.flatMap((s) => SERVER_BUILDS.map((t) => [s, t] as const));

/** The acceptance pairs: also checked with `redis-dts verify --ttl-tolerance-ms 20`, and exactly. */
const ACCEPTANCE: readonly [string, string][] = [
  ['redis-6.2.16', 'redis-7.0'],
  ['redis-6.0.20', 'redis-7.2.6'],
  ['redis-6.2.16', 'valkey-8.0.1'],
  ['redis-7.2.6', 'valkey-8.0.1'],
];
const isAcceptance = (s: ServerBuild, t: ServerBuild) =>
  ACCEPTANCE.some(([a, b]) => a === s.name && b === t.name);

describe('version matrix: destination not older than the source', () => {
  for (const [s, t] of pairs.filter(([s, t]) => !older(t, s))) {
    pairTest(
      s,
      t,
      'every type, incremental under relative expiries, kill -9 and resume, verify',
    )(async () => {
      const [source, target] = await startPair(s, t);
      await syncWithKillAndResume(source, target, WRITERS);
      if (isAcceptance(s, t)) await verifyCli(source, target);
      await assertSameData(source.url, target.url, { ttlToleranceMs: RELATIVE_TTL_TOLERANCE_MS });
    });
  }
});

describe('version matrix: the acceptance pairs with absolute expiries only are equal exactly', () => {
  for (const [a, b] of ACCEPTANCE) {
    const [s, t] = [serverBuild(a), serverBuild(b)];
    pairTest(
      s,
      t,
      'DEBUG DIGEST and every expiry equal',
    )(async () => {
      const [source, target] = await startPair(s, t);
      await syncWithKillAndResume(source, target, { ...WRITERS, expiries: 'absolute' });
      // No tolerance: equal expiries (read as PTTL + TIME on a 6.x side, within its 2 ms read error).
      await assertSameData(source.url, target.url);
    });
  }
});

describe('version matrix: newer source → older destination', () => {
  for (const [s, t] of pairs.filter(([s, t]) => older(t, s))) {
    if (s.rdb === t.rdb) {
      // Same DUMP format (6.2 → 6.0, Valkey 8 → Redis 7.2): the copy works and is as exact.
      pairTest(
        s,
        t,
        'same RDB version: synced and verified',
      )(async () => {
        const [source, target] = await startPair(s, t);
        await syncWithKillAndResume(source, target, WRITERS);
        await assertSameData(source.url, target.url, { ttlToleranceMs: RELATIVE_TTL_TOLERANCE_MS });
      });
      continue;
    }
    // The logical copy (the default, crossVersion logical) of such pairs is tested in cross-version.test.ts.
    pairTest(
      s,
      t,
      `RDB ${s.rdb} into RDB ${t.rdb}, --cross-version refuse: refused by the precheck, nothing written`,
    )(async () => {
      const [source, target] = await startPair(s, t);
      await seedEveryType(source.url, { dbs: [0] });
      const r = await runCli(syncArgs(source.url, target.url, stateDir(), ['--cross-version', 'refuse']));
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^error: precheck failed: Versions and DUMP compatibility: the destination cannot RESTORE the source's DUMP payloads .*RDB( version)? ${s.rdb}`,
          'm',
        ),
      );
      expect(r.stderr).toMatch(/^fix: use a destination of .* or newer/m);
      expect(await keyCounts(target.url)).toEqual({});
    });
  }
});

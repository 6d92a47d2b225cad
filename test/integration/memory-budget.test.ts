import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stepMemoryBudgets } from '../../infra/redis-dts.ts';
import { BIG_VALUES, seedBigValues, touchBigValues } from '../support/big-values.ts';
import { runCli, SCAN_READER, startCli, syncArgs, watchCli } from '../support/cli.ts';
import { assertSameData } from '../support/compare.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { seedManyKeys } from '../support/seed.ts';
import { startWriters } from '../support/writers.ts';

/**
 * What the sync process takes whatever the size of the values, on top of its memory budget:
 * - up to ~190 MB with small values only: Node 24, the AWS SDK, dynalite, aws-local-stepfunctions and
 *   the incremental machinery under writes (a full sync of one key peaks at 140 MB on this machine; the
 *   README's incremental figures are 133 MB idle, 135-150 MB at 10k-50k ops/s);
 * - 64 MB of garbage Buffers: V8 collects buffers that are no longer referenced only once external
 *   memory has grown by 64 MB since the last full GC (its external allocation soft limit), and a copy
 *   or compare in parts turns its pages over fast.
 * bench/memory.ts shows it is fixed: the peak grows by ~30 MB from 100 MB to 500 MB values.
 */
const BASELINE_MB = 256;
const BUDGET_MB = 128;

const dirs: string[] = [];
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'redis-dts-mem-'));
  dirs.push(d);
  return d;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The summary JSON line of a sync or verify run. */
function summaryOf(output: string): { peakRssMb: number; inPartsKeys?: string[] } {
  const line = output.split('\n').find((l) => l.startsWith('{') && l.includes('"peakRssMb"'));
  if (!line) throw new Error(`no summary line in:\n${output.slice(-2000)}`);
  return JSON.parse(line);
}

/** How often each big key was copied in parts (the full sync once, each re-copy once more). */
function inPartsCopies(output: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of [BIG_VALUES.string, BIG_VALUES.set, BIG_VALUES.hash, BIG_VALUES.stream]) {
    counts[key] = output
      .split('\n')
      .filter((l) => l.includes(`copying big key \\"${key}\\" in parts`)).length;
  }
  return counts;
}

let source: RedisProcess;

async function deleteWritersKeys(url: string): Promise<void> {
  const c = new Redis(url);
  try {
    for (const db of [0, 1]) {
      await c.select(db);
      for await (const keys of c.scanStream({ match: 'w:*', count: 1000 }) as AsyncIterable<string[]>) {
        if (keys.length > 0) await c.del(...keys);
      }
    }
  } finally {
    c.disconnect();
  }
}

afterAll(async () => {
  await stopAllRedis();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('a big key re-copied during incremental sync', () => {
  it('is renamed in the batch after the commands queued before it, so none of them is applied twice', async () => {
    const small = await startRedis({ args: ['--repl-backlog-size', '64mb'] });
    const target = await startRedis();
    // 100,000 elements: ~1.5 MB of MEMORY USAGE, over a sixteenth of the smallest budget.
    await seedBigValues(small.url, { listElements: 100_000 });
    const cli = watchCli(
      startCli(
        syncArgs(small.url, target.url, stateDir(), [
          '--until',
          'caught-up',
          '--memory-budget',
          '17mb',
          '--exclude-prefix',
          'skip:',
        ]),
      ),
    );
    await cli.until('incremental sync: applying changes');
    const c = new Redis(small.url);
    try {
      await c.rpush('skip:src', 'moved');
      // One source transaction, so one batch: LPUSH is queued when LMOVE, which writes the kept key
      // from a filtered one, has the key copied again (in parts: it is over the budget's share).
      await c
        .multi()
        .lpush(BIG_VALUES.list, 'pushed')
        .lmove('skip:src', BIG_VALUES.list, 'RIGHT', 'LEFT')
        .exec();
    } finally {
      c.disconnect();
    }
    const r = await cli.done;
    const output = cli.output();
    expect(r.code, output.slice(-3000)).toBe(0);
    expect(output).toMatch(/copying big key \\"big:list\\" in parts","unit":"recopy-/);
    expect(await target.cli('LRANGE', BIG_VALUES.list, '0', '2')).toBe('moved\npushed\nelement:1');
    await assertSameData(small.url, target.url);
  }, 300_000);
});

describe('a 300 MB string, a 2M-member set, a 1M-field hash and a 1M-entry stream', () => {
  beforeAll(async () => {
    // The writes of the whole full sync wait in the backlog for the catch-up.
    source = await startRedis({ args: ['--repl-backlog-size', '256mb'] });
    await seedBigValues(source.url, {
      stringBytes: 300 * 1024 * 1024,
      setMembers: 2_000_000,
      hashFields: 1_000_000,
      streamEntries: 1_000_000,
    });
    await seedManyKeys(source.url, { count: 20_000, mixed: true, prefix: 'small:' });
  }, 300_000);

  describe('a memory budget of 128 MB', () => {
    it('copies, verifies and re-copies a 300 MB string, a 2M-member set, a 1M-field hash and a 1M-entry stream under writes, exactly, within the budget plus the baseline', async () => {
      const target = await startRedis();
      // db 0 holds the big values too: its small keys are re-copied in the same catch-up batches as them.
      // Hours of TTL: the catch-up's copies in parts take minutes on a loaded machine, and the sync's lag
      // then exceeds the writers' shortest TTL (100 s), where the destination's clock makes keys differ.
      const writers = startWriters({
        url: source.url,
        dbs: [0, 1],
        writers: 2,
        ratePerWriter: 200,
        longTtlSeconds: [3600, 7200],
      });
      const cli = watchCli(
        startCli(
          syncArgs(source.url, target.url, stateDir(), [
            ...SCAN_READER,
            '--until',
            'caught-up',
            '--memory-budget',
            `${BUDGET_MB}mb`,
          ]),
        ),
      );
      // Non-idempotent writes to every big key while the full sync copies them: the catch-up must copy them
      // again, in parts, at an exact stamp.
      await cli.until('copying db0');
      for (let round = 1; round <= 5; round++) {
        await touchBigValues(source.url, round);
        await sleep(100);
      }
      await cli.until('incremental sync: applying changes');
      await sleep(1500);
      const stats = await writers.stop();
      expect(stats.ops).toBeGreaterThan(0);
      await sleep(700);
      const r = await cli.done;
      const output = cli.output();
      expect(r.code, output.slice(-3000)).toBe(0);
      expect(output).toContain('verify: consistent');
      for (const [key, copies] of Object.entries(inPartsCopies(output))) {
        expect(
          copies,
          `${key} copied in parts by the full sync and again by the catch-up`,
        ).toBeGreaterThanOrEqual(2);
      }
      const summary = summaryOf(output);
      // The margin, in the CI log: how close the peak came to the bound.
      console.log(`sync peak RSS ${summary.peakRssMb.toFixed(0)} MB (bound ${BUDGET_MB + BASELINE_MB} MB)`);
      expect(summary.peakRssMb).toBeLessThan(BUDGET_MB + BASELINE_MB);
      await assertSameData(source.url, target.url);
      // The writers' keys expire on their own for minutes: the next tests copy a source at rest.
      await deleteWritersKeys(source.url);
    }, 900_000);

    it('verify compares them in pages within the budget plus the baseline', async () => {
      const target = await startRedis();
      const copy = await runCli([
        ...syncArgs(source.url, target.url, stateDir()),
        '--sync-type',
        'full',
        '--verify',
        'off',
      ]);
      expect(copy.code, copy.stderr.slice(-2000)).toBe(0);
      const r = await runCli([
        'verify',
        '--source',
        source.url,
        '--target',
        target.url,
        '--progress',
        'json',
        '--memory-budget',
        `${BUDGET_MB}mb`,
      ]);
      expect(r.code, r.stdout + r.stderr.slice(-2000)).toBe(0);
      expect(r.stdout).toContain('consistent');
      const peak = summaryOf(r.stderr).peakRssMb;
      console.log(`verify peak RSS ${peak.toFixed(0)} MB (bound ${BUDGET_MB + BASELINE_MB} MB)`);
      expect(peak).toBeLessThan(BUDGET_MB + BASELINE_MB);
    }, 600_000);
  });

  describe('the memory of the stack', () => {
    it('a local state machine run with the budget the stack gives its Lambdas copies in parts what does not fit and stays within it', async () => {
      const budgets = stepMemoryBudgets();
      // One local process runs every step: it gets the smallest budget of the steps that hold data.
      const budget = Math.min(budgets.copyChunk!, budgets.verify!, budgets.incrementalWindow!);
      const target = await startRedis();
      const state = stateDir();
      // The Verify step's budget is checked at 128 MB above; here the copy, without it, to keep CI short.
      const r = await runCli(
        // The Lambdas' path: CopyChunk reads with SCAN.
        [
          ...syncArgs(source.url, target.url, state, [...SCAN_READER]),
          '--sync-type',
          'full',
          '--verify',
          'off',
        ],
        {
          REDIS_DTS_MEMORY_BUDGET: String(budget),
        },
      );
      expect(r.code, r.stderr.slice(-2000)).toBe(0);
      const summary = summaryOf(r.stderr);
      // A sixteenth of 768 MiB is 48 MiB: the string, the set and the hash are over it, the stream is not.
      expect(summary.inPartsKeys).toEqual(
        expect.arrayContaining([`"${BIG_VALUES.string}"`, `"${BIG_VALUES.set}"`, `"${BIG_VALUES.hash}"`]),
      );
      console.log(
        `stack-budget peak RSS ${summary.peakRssMb.toFixed(0)} MB (bound ${(budget / 1024 / 1024 + BASELINE_MB).toFixed(0)} MB)`,
      );
      expect(summary.peakRssMb).toBeLessThan(budget / 1024 / 1024 + BASELINE_MB);
      const status = await runCli(['status', '--state-dir', state]);
      expect(status.stdout).toMatch(
        /^memory {3}full-sync peak RSS \d+ MB; 3 key\(s\) copied in parts \(.*"big:string"/m,
      );
      await assertSameData(source.url, target.url);
    }, 600_000);
  });
});

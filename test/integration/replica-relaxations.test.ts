import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { runPrecheck } from '../../lib/precheck/run-precheck.ts';
import { parseTaskSpec } from '../../lib/task/spec.ts';
import { startCli, syncArgs, watchCli } from '../support/cli.ts';
import { assertSameData } from '../support/compare.ts';
import { startRedis, stopAllRedis } from '../support/redis-server.ts';
import { seedManyKeys } from '../support/seed.ts';
import { startWriters } from '../support/writers.ts';

// Each case of lib/commands/replica-relaxations.ts through a real full+incremental sync.

const dirs: string[] = [];
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'redis-dts-relax-'));
  dirs.push(d);
  return d;
}

afterAll(async () => {
  await stopAllRedis();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const BIG_BACKLOG = ['--repl-backlog-size', '256mb'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('commands a master propagates that a client may not send', () => {
  it('XADD/XTRIM with an approximate trim and LIMIT are applied (the master sends = n LIMIT m)', async () => {
    // Small stream nodes, so that approximate trims remove whole nodes and the LIMIT matters.
    const source = await startRedis({ args: [...BIG_BACKLOG, '--stream-node-max-entries', '10'] });
    const target = await startRedis();
    await seedManyKeys(source.url, { db: 0, count: 2_000, mixed: true, prefix: 'seed:' });
    const writers = startWriters({ url: source.url, dbs: [0], writers: 2 });
    const cli = watchCli(startCli(syncArgs(source.url, target.url, stateDir(), ['--until', 'caught-up'])));
    const src = new Redis(source.url);
    const streams = async (n: number) => {
      const p = src.pipeline();
      for (let i = 0; i < n; i++) {
        p.call('XADD', 's', 'MAXLEN', '~', '1000', 'LIMIT', '100', '*', 'f', String(i));
        p.call('XADD', 'm', 'MINID', '~', `${i}`, 'LIMIT', '30', `${i + 1}-1`, 'f', 'v');
        if (i % 50 === 0) {
          p.call('XTRIM', 's', 'MAXLEN', '~', '400', 'LIMIT', '20');
          p.call('XTRIM', 'm', 'MINID', '~', `${Math.max(0, i - 40)}`, 'LIMIT', '10');
          p.call('XADD', 'n', 'MAXLEN', '=', '5', '*', 'LIMIT', 'x'); // a field named LIMIT
        }
      }
      await p.exec();
    };
    try {
      await streams(1_500); // before the sync reads them: part of the full sync or its catch-up
      await cli.until('incremental sync: applying changes');
      await src.del('m');
      await streams(3_000);
      const propagated = await src.xlen('s');
      expect(propagated).toBeGreaterThan(400);
      await writers.stop();
      await sleep(700);
      const r = await cli.done;
      expect(r.code, cli.output()).toBe(0);
      await assertSameData(source.url, target.url);
      // The sync applied the trims rather than copying the streams again.
      expect(cli.output()).not.toContain('UNSUPPORTED_COMMAND');
    } finally {
      src.disconnect();
    }
  }, 180_000);

  it('values beyond the destination’s proto-max-bulk-len: the keys are copied from the source', async () => {
    const source = await startRedis({ args: BIG_BACKLOG });
    const target = await startRedis({ args: ['--proto-max-bulk-len', '1mb'] });
    await seedManyKeys(source.url, { db: 0, count: 1_000, mixed: true, prefix: 'seed:' });
    const writers = startWriters({ url: source.url, dbs: [0], writers: 2 });
    const cli = watchCli(startCli(syncArgs(source.url, target.url, stateDir(), ['--until', 'caught-up'])));
    const src = new Redis(source.url);
    const MB = 1024 * 1024;
    try {
      await cli.until('incremental sync: applying changes');
      // Compressible values: their DUMP fits one RESTORE, though the value does not fit one argument.
      await src.set('big:set', 'a'.repeat(1.5 * MB));
      await src.call('SETRANGE', 'big:range', String(2 * MB), 'x');
      await src.call('SETBIT', 'big:bit', String(10 * MB), '1');
      await src.call('BITFIELD', 'big:field', 'SET', 'u8', `#${1.5 * MB}`, '255');
      await src.hset('big:hash', 'f', 'b'.repeat(1.2 * MB));
      await src.call('SETRANGE', 'small:range', '10', 'y'); // below the limit: applied as is
      await writers.stop();
      await sleep(700);
      const r = await cli.done;
      expect(r.code, cli.output()).toBe(0);
      await assertSameData(source.url, target.url);
      const tgt = new Redis(target.url);
      expect(await tgt.strlen('big:bit')).toBe((10 * MB) / 8 + 1);
      tgt.disconnect();
    } finally {
      src.disconnect();
    }
  }, 180_000);

  it('an overflowed ENTRIESREAD, which no server accepts, is applied by copying the stream', async () => {
    const source = await startRedis({ args: BIG_BACKLOG });
    const target = await startRedis();
    await seedManyKeys(source.url, { db: 0, count: 1_000, mixed: true, prefix: 'seed:' });
    const writers = startWriters({ url: source.url, dbs: [0], writers: 2 });
    const cli = watchCli(startCli(syncArgs(source.url, target.url, stateDir(), ['--until', 'caught-up'])));
    const src = new Redis(source.url);
    try {
      await cli.until('incremental sync: applying changes');
      for (let i = 1; i <= 3; i++) await src.xadd('st', `${i}-1`, 'f', 'v');
      await src.call('XGROUP', 'CREATE', 'st', 'g', '0', 'ENTRIESREAD', '9223372036854775807');
      // Delivering entries moves entries-read past 2^63-1; with NOACK the source propagates the group's
      // position as XGROUP SETID … ENTRIESREAD -9223… (without NOACK it sends XCLAIMs, which carry no counter,
      // so a native replica keeps the old one too).
      await src.call('XREADGROUP', 'GROUP', 'g', 'c', 'NOACK', 'STREAMS', 'st', '>');
      await src.xadd('st', '4-1', 'f', 'after');
      await writers.stop();
      await sleep(700);
      const r = await cli.done;
      expect(r.code, cli.output()).toBe(0);
      await assertSameData(source.url, target.url);
    } finally {
      src.disconnect();
    }
  }, 120_000);

  it('precheck warns of a destination proto-max-bulk-len below the source’s', async () => {
    const source = await startRedis({ args: ['--proto-max-bulk-len', '4mb'] });
    const low = await startRedis({ args: ['--proto-max-bulk-len', '2mb'] });
    const high = await startRedis({ args: ['--proto-max-bulk-len', '4mb'] });
    const report = async (target: string) => {
      const spec = parseTaskSpec({ source: { url: source.url }, target: { url: target } }, { mode: 'local' });
      const r = await runPrecheck(spec, { sampleWriteRateMs: 50 });
      return r.items.find((i) => i.id === 'target-bulk-limit');
    };
    expect(await report(low.url)).toMatchObject({
      status: 'warning',
      detail: expect.stringMatching(
        /^the destination's proto-max-bulk-len is 2\.0 MB, below the source's \(the source's is 4\.0 MB\)/,
      ),
      fix: expect.stringContaining('raise proto-max-bulk-len on the destination'),
    });
    expect((await report(high.url))?.status).toBe('passed');
  }, 60_000);
});

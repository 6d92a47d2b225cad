import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { SCAN_READER, startCli, syncArgs, watchCli } from '../support/cli.ts';
import { assertSameData } from '../support/compare.ts';
import { startRedis, stopAllRedis } from '../support/redis-server.ts';
import { seedManyKeys } from '../support/seed.ts';
import { startWriters } from '../support/writers.ts';

const dirs: string[] = [];
afterAll(async () => {
  await stopAllRedis();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const lib = (name: string, fn: string) =>
  `#!lua name=${name}\nredis.register_function('${fn}', function(keys, args) return redis.call('INCR', keys[1]) end)`;

async function libraries(url: string): Promise<string> {
  const c = new Redis(url);
  try {
    // FUNCTION LIST follows the server's dict order: compare by library.
    const list = (await c.call('FUNCTION', 'LIST', 'WITHCODE')) as unknown[];
    return JSON.stringify(list.map((l) => JSON.stringify(l)).sort());
  } finally {
    c.disconnect();
  }
}

describe('function libraries', () => {
  it('are copied with the data, and FUNCTION LOAD/DELETE before and during the sync end equal', async () => {
    const source = await startRedis({ args: ['--repl-backlog-size', '64mb'] });
    const target = await startRedis();
    const src = new Redis(source.url);
    await src.call('FUNCTION', 'LOAD', lib('before', 'f_before'));
    await src.call('FUNCTION', 'LOAD', lib('doomed', 'f_doomed'));
    await seedManyKeys(source.url, { db: 0, count: 5_000, mixed: true, prefix: 'seed:' });
    const writers = startWriters({ url: source.url, dbs: [0], writers: 2 });
    const state = mkdtempSync(join(tmpdir(), 'redis-dts-fn-'));
    dirs.push(state);
    const cli = watchCli(
      startCli(syncArgs(source.url, target.url, state, [...SCAN_READER, '--until', 'caught-up'])),
    );
    try {
      await cli.until('copying db0');
      await src.call('FUNCTION', 'LOAD', lib('during', 'f_during')); // in the catch-up window
      await cli.until('incremental sync: applying changes');
      await src.call('FUNCTION', 'DELETE', 'doomed'); // made before the task: only the copy has it
      await src.call('FUNCTION', 'LOAD', 'REPLACE', lib('during', 'f_during2'));
      await src.call('FCALL', 'f_before', '1', 'counter');
      await writers.stop();
      const r = await cli.done;
      expect(r.code, cli.output()).toBe(0);
      expect(cli.output()).toMatch(/functions: copying the source's \d+ function libraries/);
      expect(await libraries(target.url)).toBe(await libraries(source.url));
      expect(await libraries(target.url)).toContain('f_during2');
      await assertSameData(source.url, target.url);
    } finally {
      src.disconnect();
    }
  }, 120_000);
});

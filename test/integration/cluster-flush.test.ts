import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { makeKeyFilter } from '../../lib/commands/key-filter.ts';
import { emptySlots, slotsOf } from '../../lib/incremental/slot-flush.ts';
import { keySlot, tagForSlots } from '../../lib/redis/cluster-slot.ts';
import { openTargetRouting } from '../../lib/redis/target-routing.ts';
import { parseRedisUrl } from '../../lib/redis/url.ts';
import { startCli, syncArgs, watchCli } from '../support/cli.ts';
import { assertSameKeys } from '../support/cluster-compare.ts';
import { clusterFixture, seedCluster } from '../support/cluster-fixture.ts';
import { startRedis, stopAllRedis } from '../support/redis-server.ts';
import { startWriters } from '../support/writers.ts';

// FLUSHDB/FLUSHALL sent to one master of a cluster source: the destination loses exactly that master's
// slots' keys, while the other masters' streams keep writing theirs.

const fixture = clusterFixture('redis-dts-flush-');
const { cluster, stateDir } = fixture;

afterAll(async () => {
  await fixture.cleanup();
  await stopAllRedis();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const BIG_BACKLOG = ['--repl-backlog-size', '256mb'];
/** Master 1 of a 3-master test cluster serves slots 5461-10921 (redis-cluster.ts splits them evenly). */
const SHARD_1 = 'slots5461-10921';
/** One step of a two-run test: long enough for a loaded CI machine, short enough to show the output. */
const STEP_MS = 70_000;

async function dbsize(urls: readonly string[]): Promise<number> {
  let n = 0;
  for (const url of urls) {
    const c = new Redis(url);
    try {
      n += await c.dbsize();
    } finally {
      c.disconnect();
    }
  }
  return n;
}

describe('emptySlots (the destination side of a shard flush)', () => {
  /** Keys in every slot range, our own marker keys in the flushed slots, and keys the filter leaves out. */
  async function seed(client: Redis | Cluster): Promise<string[]> {
    const keys: string[] = [];
    for (let i = 0; i < 3000; i++) keys.push(`k:${i}`, `other:${i}`);
    // One slot in each flushed range with more keys than one GETKEYSINSLOT reply, some left by the filter.
    for (const tag of [tagForSlots((s) => s <= 5460), tagForSlots((s) => s >= 5461 && s <= 10921)]) {
      for (let i = 0; i < 2500; i++) keys.push(`k:{${tag}}:${i}`);
      for (let i = 0; i < 1200; i++) keys.push(`other:{${tag}}:${i}`);
    }
    // Our own keys (markers, skip hashes, temporary keys), tagged into every part of the slot space.
    const internal = Array.from({ length: 30 }, (_, i) =>
      ['redis-dts:marker:t:s:node:{%}', 'redis-dts:marker:t:s:{%}:skip', 'redis-dts:tmp:t:{%}'][
        i % 3
      ]!.replace('%', String(i)),
    );
    const all = [...keys, ...internal];
    for (let i = 0; i < all.length; i += 1000) {
      await Promise.all(all.slice(i, i + 1000).map((k) => client.set(k, 'v')));
    }
    return all;
  }

  function expectRemaining(all: string[], remaining: Set<string>, inFlushed: (slot: number) => boolean) {
    const keep = makeKeyFilter({ exclude: ['other:'] });
    // Some of our own keys are in the flushed slots: they must stay.
    expect(all.some((k) => k.startsWith('redis-dts:') && inFlushed(keySlot(k)))).toBe(true);
    const wrong = all.filter((k) => {
      const removed = inFlushed(keySlot(k)) && keep(Buffer.from(k));
      return removed === remaining.has(k);
    });
    expect(wrong.slice(0, 10)).toEqual([]);
  }

  it('standalone destination: removes exactly the synced keys of the slots, in the mapped db', async () => {
    const target = await startRedis();
    const db5 = new Redis(target.url, { db: 5 });
    const db0 = new Redis(target.url);
    try {
      const all = await seed(db5);
      await db0.set('k:1', 'untouched: another db');
      const slots = slotsOf('slots5461-10921', [[5461, 10921]]);
      const removed = await emptySlots({
        routing: await openTargetRouting(parseRedisUrl(target.url, 'target')),
        db: 5,
        slots,
        keep: makeKeyFilter({ exclude: ['other:'] }),
      });
      const remaining = new Set(await db5.keys('*'));
      expectRemaining(all, remaining, (s) => s >= 5461 && s <= 10921);
      expect(removed).toBe(all.length - remaining.size);
      expect(removed).toBeGreaterThan(3000);
      expect(await db0.get('k:1')).toBe('untouched: another db');
    } finally {
      db5.disconnect();
      db0.disconnect();
    }
  });

  it('cluster destination: removes them on the master of each slot, whatever its layout', async () => {
    // Two masters: the flushed source range (0-5460) spans part of one destination master's slots only.
    const target = await cluster({ masters: 2 });
    const client = new Cluster([{ host: target.masters[0]!.host, port: target.masters[0]!.port }]);
    try {
      const all = await seed(client);
      const slots = slotsOf('slots0-5460', [[0, 5460]]);
      const removed = await emptySlots({
        routing: await openTargetRouting(parseRedisUrl(target.url, 'target')),
        db: 0,
        slots,
        keep: makeKeyFilter({ exclude: ['other:'] }),
      });
      const remaining = new Set<string>();
      for (const m of target.masters) {
        const c = new Redis(m.url);
        for (const k of await c.keys('*')) remaining.add(k);
        c.disconnect();
      }
      expectRemaining(all, remaining, (s) => s <= 5460);
      expect(removed).toBe(all.length - remaining.size);
      expect(removed).toBeGreaterThan(3000);
    } finally {
      client.disconnect();
    }
  });
});

function sync(source: string, target: string, state: string, extra: string[] = []) {
  return watchCli(
    startCli(syncArgs(source, target, state, ['--until', 'caught-up', '--dbs', '0', ...extra])),
  );
}

/**
 * A 3-master cluster source under writers on every shard; `flush` runs `command` on master 1 once
 * `when` is printed (and `pause` passed); the writers keep going for two seconds, then stop, and the CLI
 * must end caught up with the destination equal key by key.
 */
async function flushDuringSync(o: {
  target: 'standalone' | 'cluster';
  command: 'FLUSHALL' | 'FLUSHDB';
  when: string;
  pause: number;
  extra?: string[];
}): Promise<string> {
  const source = await cluster({ masters: 3, args: BIG_BACKLOG });
  const target = o.target === 'cluster' ? await cluster({ masters: 3 }) : await startRedis();
  const targetUrls = 'masters' in target ? target.masters.map((m) => m.url) : [target.url];
  await seedCluster(source, 12_000);
  const writers = startWriters({ url: source.url, dbs: [0], writers: 4, cluster: true });
  const cli = sync(source.url, target.url, stateDir(), o.extra);
  await cli.until(o.when);
  await sleep(o.pause);
  const before = Number(await source.masters[1]!.cli('DBSIZE'));
  expect(before).toBeGreaterThan(1000);
  expect(await source.masters[1]!.cli(o.command)).toBe('OK');
  await sleep(2000);
  const stats = await writers.stop();
  expect(stats.ops).toBeGreaterThan(0);
  // Short-lived keys the writers made expire on the source before the comparison.
  await sleep(700);
  const r = await cli.done;
  expect(r.code, cli.output()).toBe(0);
  const masters = source.masters.map((m) => m.url);
  // The flushed master holds only what the writers wrote after the flush; the others kept their seed.
  expect(Number(await source.masters[1]!.cli('DBSIZE'))).toBeLessThan(before);
  expect(await assertSameKeys(masters, targetUrls)).toBeGreaterThan(7000);
  expect(await dbsize(targetUrls)).toBe(await dbsize(masters));
  return cli.output();
}

/** The removal count the shard logged (`… removed N keys of the shard's 5461 slots …`). */
function removedCount(output: string, pattern: RegExp): number {
  const m = output.match(pattern);
  expect(m, output).not.toBeNull();
  return Number(m![1]);
}

describe('cluster source: FLUSHALL/FLUSHDB on one master', () => {
  it('FLUSHALL during incremental sync → standalone destination: exactly that shard emptied, nothing else lost', async () => {
    const output = await flushDuringSync({
      target: 'standalone',
      command: 'FLUSHALL',
      when: `shard ${SHARD_1}: incremental sync: applying changes`,
      pause: 500,
    });
    expect(
      removedCount(output, /FLUSHALL on the source: removed (\d+) keys of the shard's 5461 slots/),
    ).toBeGreaterThan(1000);
  }, 180_000);

  it('FLUSHDB during incremental sync → cluster destination', async () => {
    const output = await flushDuringSync({
      target: 'cluster',
      command: 'FLUSHDB',
      when: `shard ${SHARD_1}: incremental sync: applying changes`,
      pause: 500,
    });
    expect(
      removedCount(output, /FLUSHDB on the source: removed (\d+) keys of the shard's 5461 slots/),
    ).toBeGreaterThan(1000);
  }, 180_000);

  it('FLUSHALL during the full sync (the catch-up window): the shard is emptied and copied again', async () => {
    // Throttled, each master's copy takes about ten seconds: the flush lands while master 1 is copied, so
    // chunks of it are stamped after the flush and the flush is in its catch-up (asserted by the log).
    const output = await flushDuringSync({
      target: 'cluster',
      command: 'FLUSHALL',
      when: `copying ${SHARD_1}-db0`,
      pause: 1000,
      extra: ['--max-keys-per-second', '400', '--chunk-keys', '200'],
    });
    expect(output).toMatch(new RegExp(`shard ${SHARD_1}: catch-up: db 0 changed as a whole`));
    expect(removedCount(output, /catch-up: removed (\d+) keys of the shard's 5461 slots/)).toBeGreaterThan(0);
  }, 240_000);

  it('a sync stopped before the emptying is done resumes before the flush and empties again (exactly once)', async () => {
    const source = await cluster({ masters: 3, args: BIG_BACKLOG });
    const target = await startRedis();
    await seedCluster(source, 12_000);
    const state = stateDir();
    const writers = startWriters({ url: source.url, dbs: [0], writers: 4, cluster: true });
    // The destination refuses UNLINK: the first run stops at the emptying, as a crash there would.
    expect(await target.cli('ACL', 'SETUSER', 'default', '-unlink')).toBe('OK');
    const first = sync(source.url, target.url, state);
    await first.until(`shard ${SHARD_1}: incremental sync: applying changes`, STEP_MS);
    await sleep(500);
    expect(await source.masters[1]!.cli('FLUSHALL')).toBe('OK');
    const r1 = await first.doneWithin(STEP_MS);
    expect(r1.code, first.output()).toBe(1);
    expect(first.output()).toMatch(
      /refused SCAN\/UNLINK while the slots of a flushed source shard were emptied/,
    );
    expect(await target.cli('ACL', 'SETUSER', 'default', '+unlink')).toBe('OK');
    const second = sync(source.url, target.url, state);
    await second.until(`shard ${SHARD_1}: incremental sync: applying changes`, STEP_MS);
    await sleep(1000);
    const stats = await writers.stop();
    expect(stats.ops).toBeGreaterThan(0);
    await sleep(700);
    const r2 = await second.doneWithin(STEP_MS);
    expect(r2.code, second.output()).toBe(0);
    expect(second.output()).toContain("from the destination's marker");
    // The flush was replayed: its marker had stayed before it.
    expect(removedCount(second.output(), /FLUSHALL on the source: removed (\d+) keys/)).toBeGreaterThan(1000);
    const masters = source.masters.map((m) => m.url);
    expect(await assertSameKeys(masters, [target.url])).toBeGreaterThan(7000);
  }, 240_000);

  it('FLUSHALL inside a transaction on the master: writes before it in the transaction go, writes after it stay', async () => {
    const source = await cluster({ masters: 3 });
    const target = await startRedis();
    await seedCluster(source, 6_000);
    const cli = sync(source.url, target.url, stateDir());
    await cli.until(`shard ${SHARD_1}: incremental sync: applying changes`);
    const tag = tagForSlots((s) => s >= 5461 && s <= 10921);
    const master = new Redis(source.masters[1]!.url);
    try {
      const replies = await master
        .multi()
        .set(`tx:{${tag}}:before`, '1')
        .incr(`tx:{${tag}}:counter`)
        .flushall()
        .incr(`tx:{${tag}}:counter`)
        .rpush(`tx:{${tag}}:after`, 'a', 'b')
        .exec();
      expect(replies?.map(([e]) => e)).toEqual([null, null, null, null, null]);
    } finally {
      master.disconnect();
    }
    const r = await cli.done;
    expect(r.code, cli.output()).toBe(0);
    expect(cli.output()).toMatch(/FLUSHALL on the source: removed \d+ keys/);
    expect(await target.cli('GET', `tx:{${tag}}:counter`)).toBe('1');
    expect(await target.cli('EXISTS', `tx:{${tag}}:before`)).toBe('0');
    expect(
      await assertSameKeys(
        source.masters.map((m) => m.url),
        [target.url],
      ),
    ).toBeGreaterThan(3000);
  }, 120_000);
});

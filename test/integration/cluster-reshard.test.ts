import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { keySlot } from '../../lib/redis/cluster-slot.ts';
import { startCli, syncArgs, watchCli } from '../support/cli.ts';
import { assertSameKeys } from '../support/cluster-compare.ts';
import { clusterFixture, seedCluster } from '../support/cluster-fixture.ts';
import { startRedis, stopAllRedis } from '../support/redis-server.ts';
import { startWriters } from '../support/writers.ts';

// Slots of a cluster source moved between its masters by redis-cli --cluster reshard while the task
// follows it and non-idempotent writers write through a cluster client: the destination must end equal
// key by key (no key lost to the old master's DEL, no write applied twice around the new master's
// RESTORE-ASKING).

const run = promisify(execFile);
const fixture = clusterFixture('redis-dts-reshard-');
const { cluster, stateDir } = fixture;

afterAll(async () => {
  await fixture.cleanup();
  await stopAllRedis();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const BIG_BACKLOG = ['--repl-backlog-size', '256mb'];
const SHARDS = ['slots0-5460', 'slots5461-10921', 'slots10922-16383'];

/** redis-cli --cluster reshard, non-interactive; resolves with its output. */
async function reshard(seed: string, from: string, to: string, slots: number): Promise<string> {
  const r = await run(
    'redis-cli',
    [
      '--cluster',
      'reshard',
      seed,
      '--cluster-from',
      from,
      '--cluster-to',
      to,
      '--cluster-slots',
      String(slots),
      '--cluster-yes',
      // Small batches: the keys of a slot go in several MIGRATEs, while the writers write them.
      '--cluster-pipeline',
      '5',
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  return r.stdout;
}

async function slotCount(node: { url: string }): Promise<number> {
  const c = new Redis(node.url);
  try {
    const id = String(await c.call('CLUSTER', 'MYID'));
    const nodes = String(await c.call('CLUSTER', 'NODES'));
    const line = nodes.split('\n').find((l) => l.startsWith(id))!;
    return line
      .split(' ')
      .slice(8)
      .reduce((n, r) => {
        const [a, b] = r.split('-').map(Number);
        return n + (b === undefined ? 1 : b! - a! + 1);
      }, 0);
  } finally {
    c.disconnect();
  }
}

describe('cluster source resharded during incremental sync', () => {
  it.each(['standalone', 'cluster'] as const)(
    'redis-cli --cluster reshard between two masters under writers → %s destination: equal key by key',
    async (kind) => {
      const source = await cluster({ masters: 3, args: BIG_BACKLOG });
      const target = kind === 'cluster' ? await cluster({ masters: 3 }) : await startRedis();
      const targetUrls = 'masters' in target ? target.masters.map((m) => m.url) : [target.url];
      await seedCluster(source, 12_000);
      // Short-lived keys expire during the test: their DELs come from whichever master holds them.
      const writers = startWriters({ url: source.url, dbs: [0], writers: 4, cluster: true });
      const cli = watchCli(
        startCli(syncArgs(source.url, target.url, stateDir(), ['--until', 'caught-up', '--dbs', '0'])),
      );
      for (const s of SHARDS) await cli.until(`shard ${s}: incremental sync: applying changes`);
      await sleep(500);
      const [m0, m1] = source.masters;
      const id = async (m: typeof m0) => m!.cli('CLUSTER', 'MYID');
      // 4000 slots of master 0 (which redis-cli takes from its first slots) hold four of the writers' 16
      // hash tags, and a third of the seed.
      const out = await reshard(`${m0!.host}:${m0!.port}`, await id(m0), await id(m1), 4000);
      expect(out).toContain('Moving slot');
      expect(await slotCount(m1!)).toBe(5461 + 4000);
      // Master 0's heartbeat key was on slot 1584 (tag {3}), which moved: it writes under a tag of a slot
      // it kept, or its shard would go without heartbeats.
      let beating = '';
      for (let i = 0; i < 50 && !beating; i++) {
        beating = String(await m0!.cli('KEYS', 'redis-dts:heartbeat:*'));
        if (!beating) await sleep(100);
      }
      expect(beating).toMatch(/:\{\w+\}$/);
      expect(keySlot(Buffer.from(beating.match(/\{(\w+)\}$/)![1]!))).toBeGreaterThanOrEqual(4000);
      await sleep(1500);
      const stats = await writers.stop();
      expect(stats.ops).toBeGreaterThan(1000);
      await sleep(700);
      const r = await cli.done;
      expect(r.code, cli.output()).toBe(0);
      const output = cli.output();
      // The moves were seen and ended: master 1 imported, and each slot became its once master 0 drained.
      expect(output).toMatch(/source slots are moving from shard slots0-5460 to shard slots5461-10921/);
      expect(output).toMatch(
        /source slots moved from shard slots0-5460 to shard slots5461-10921 \(0 still moving, 4000 in all\)/,
      );
      const masters = source.masters.map((m) => m.url);
      expect(await assertSameKeys(masters, targetUrls)).toBeGreaterThan(7000);
    },
    300_000,
  );
});

describe('cluster source given a new master during incremental sync', () => {
  it('redis-cli --cluster add-node + reshard to it → the task stops naming the new master and the fix', async () => {
    const source = await cluster({ masters: 3, args: BIG_BACKLOG });
    const target = await startRedis();
    await seedCluster(source, 3000);
    const writers = startWriters({ url: source.url, dbs: [0], writers: 2, cluster: true });
    const cli = watchCli(startCli(syncArgs(source.url, target.url, stateDir(), ['--dbs', '0'])));
    try {
      for (const s of SHARDS) await cli.until(`shard ${s}: incremental sync: applying changes`);
      const extra = await startRedis({
        args: ['--cluster-enabled', 'yes', '--cluster-node-timeout', '2000', ...BIG_BACKLOG],
      });
      const m0 = source.masters[0]!;
      const seed = `${m0.host}:${m0.port}`;
      await run('redis-cli', ['--cluster', 'add-node', `${extra.host}:${extra.port}`, seed]);
      // add-node returns once the new node is met; it serves (MIGRATE into it) once it learned the slot
      // map, and reshard refuses until every node agrees on it (its epoch settles through gossip).
      for (let i = 0; i < 150 && !(await extra.cli('CLUSTER', 'INFO')).includes('cluster_state:ok'); i++) {
        await sleep(200);
      }
      const from = await m0.cli('CLUSTER', 'MYID');
      const to = await extra.cli('CLUSTER', 'MYID');
      for (let attempt = 1; ; attempt++) {
        const out = await reshard(seed, from, to, 200).catch((e) => e as Error & { stdout: string });
        if (typeof out === 'string') break;
        if (!out.stdout?.includes("don't agree") || attempt === 50)
          throw new Error(`${out.message}\n${out.stdout}`);
        await sleep(300);
      }
      const r = await cli.doneWithin(60_000);
      expect(r.code).not.toBe(0);
      const output = cli.output();
      expect(output).toContain(`source master ${extra.host}:${extra.port}`);
      expect(output).toContain('a master added to the source cluster during the task');
      expect(output).toContain('run the task again with a fresh full sync');
    } finally {
      await writers.stop();
    }
  }, 180_000);
});

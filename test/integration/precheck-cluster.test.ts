import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunPrecheckOptions, runPrecheck } from '../../lib/precheck/run-precheck.ts';
import type { PrecheckItem, PrecheckReport } from '../../lib/precheck/types.ts';
import { parseTaskSpec, type TaskSpecInput } from '../../lib/task/spec.ts';
import { type RedisClusterProcess, startRedisCluster } from '../support/redis-cluster.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';

type Input = Omit<TaskSpecInput, 'source' | 'target'> & { source: string; target: string };

function check(input: Input, opts: RunPrecheckOptions = {}): Promise<PrecheckReport> {
  const { source, target, ...rest } = input;
  const spec = parseTaskSpec(
    { ...rest, source: { url: source }, target: { url: target } },
    { mode: 'local' },
  );
  return runPrecheck(spec, { sampleWriteRateMs: 50, ...opts });
}

function item(report: PrecheckReport, id: string): PrecheckItem {
  const found = report.items.find((i) => i.id === id);
  if (!found) throw new Error(`no item ${id} in ${report.items.map((i) => i.id).join(', ')}`);
  return found;
}

function notPassed(report: PrecheckReport): PrecheckItem[] {
  return report.items.filter((i) => i.status !== 'passed');
}

/** Keys the precheck may have left behind on any node (it must leave none). */
async function leftovers(nodes: readonly RedisProcess[]): Promise<string[]> {
  const found = await Promise.all(nodes.map((n) => n.cli('--scan', '--pattern', 'redis-dts:*')));
  return found.filter((f) => f !== '');
}

const at = (n: RedisProcess) => `127.0.0.1:${n.port}`;

let standalone: RedisProcess;
/** 3 masters, no replicas: the destination. */
let dstCluster: RedisClusterProcess;
/** 3 masters with 1 replica each: the source. */
let srcCluster: RedisClusterProcess;

beforeAll(async () => {
  [standalone, dstCluster, srcCluster] = await Promise.all([
    startRedis(),
    startRedisCluster({ masters: 3 }),
    startRedisCluster({ masters: 3, replicasPerMaster: 1 }),
  ]);
  for (let i = 1; i <= 5; i++) await standalone.cli('SET', `user:${i}`, `value ${i}`);
  // Keys on every source master: {a}, {b} and {c} fall into three different thirds of the slots.
  for (const tag of ['a', 'b', 'c']) {
    await srcCluster.masters[0]!.cli('-c', 'SET', `item:{${tag}}`, tag);
  }
}, 120_000);

afterAll(async () => {
  await Promise.all([dstCluster?.stop(), srcCluster?.stop()]);
  await stopAllRedis();
});

describe('standalone source → 3-master cluster destination', () => {
  it('passes, reports the layout, and writes the probes to the masters that own them', async () => {
    const report = await check({ source: standalone.url, target: dstCluster.url });
    expect(notPassed(report)).toEqual([]);
    const [m0, m1, m2] = dstCluster.masters.map(at);
    expect(item(report, 'target-cluster').detail).toContain(
      `cluster destination, 3 masters: ${m0} (slots 0-5460, 0 replicas), ${m1} (slots 5461-10921, 0 replicas), ${m2} (slots 10922-16383, 0 replicas)`,
    );
    expect(item(report, 'source-cluster').detail).toMatch(/^standalone source/);
    expect(item(report, 'target-writable').detail).toContain('on each of the 3 masters');
    for (const m of [m0, m1, m2]) {
      expect(item(report, 'target-writable').detail).toContain(`${m}: redis-dts:tmp:precheck:`);
      expect(item(report, 'existing-keys').detail).toContain(m);
      expect(item(report, 'target-eviction').detail).toContain(m);
      expect(item(report, 'target-memory').detail).toContain(m);
    }
    expect(item(report, 'dump-compat').detail).toMatch(
      /RESTOREd a DUMP of key "user:\d" of db 0 .*on master 127\.0\.0\.1:\d+/,
    );
    expect(report.target).toMatchObject({
      clusterEnabled: true,
      layout: expect.stringContaining('3 masters'),
    });
    expect(await leftovers(dstCluster.nodes)).toEqual([]);
  });

  it('a key on one master fails the existing-keys check, naming that master', async () => {
    const owner = dstCluster.masters[1]!;
    // {c} is slot 7365, served by the second master.
    await owner.cli('SET', 'left:{c}', 'x');
    try {
      const report = await check({ source: standalone.url, target: dstCluster.url, syncType: 'full' });
      expect(item(report, 'existing-keys')).toMatchObject({
        status: 'failed',
        detail: `${at(owner)} db 0 has 1 key ("left:{c}"): --existing-keys block refuses a destination that holds keys`,
      });
    } finally {
      await owner.cli('DEL', 'left:{c}');
    }
  });

  it('an evicting policy on one master is a warning naming that master', async () => {
    const owner = dstCluster.masters[2]!;
    await owner.cli('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const report = await check({ source: standalone.url, target: dstCluster.url, syncType: 'full' });
      const found = item(report, 'target-eviction');
      expect(found).toMatchObject({ status: 'warning' });
      expect(found.detail).toMatch(new RegExp(`^${at(owner)}: maxmemory-policy is allkeys-lru`));
      expect(found.detail).not.toContain(at(dstCluster.masters[0]!));
    } finally {
      await owner.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    }
  });

  it('a master whose maxmemory is below its share of the source fails the memory check', async () => {
    const owner = dstCluster.masters[0]!;
    const used = Number(/used_memory:(\d+)/.exec(await standalone.cli('INFO', 'memory'))![1]);
    // Enough for the whole source on one server, not for a third of it on a master that already uses memory.
    await owner.cli('CONFIG', 'SET', 'maxmemory', String(Math.floor(used / 10)));
    try {
      const report = await check({ source: standalone.url, target: dstCluster.url, syncType: 'full' });
      expect(item(report, 'target-memory')).toMatchObject({
        status: 'failed',
        detail: expect.stringMatching(
          new RegExp(
            `^${at(owner)}: destination maxmemory .* is below its share of the source's used memory`,
          ),
        ),
        fix: expect.stringContaining(`raise ${at(owner)}'s maxmemory`),
      });
    } finally {
      await owner.cli('CONFIG', 'SET', 'maxmemory', '0');
    }
  });
});

describe('cluster source (with replicas) → standalone destination', () => {
  let empty: RedisProcess;
  beforeAll(async () => {
    empty = await startRedis();
  });

  it('passes, reporting the source layout and the backlog of every master', async () => {
    const report = await check({ source: srcCluster.url, target: empty.url });
    expect(notPassed(report)).toEqual([]);
    const masters = srcCluster.masters.map(at);
    expect(item(report, 'source-cluster').detail).toMatch(
      new RegExp(`^cluster source, 3 masters: ${masters[0]} \\(slots 0-5460, 1 replica\\), `),
    );
    expect(item(report, 'source-cluster').detail).toContain('one PSYNC stream per master');
    expect(item(report, 'target-cluster').detail).toMatch(/^standalone destination/);
    for (const m of masters) {
      expect(item(report, 'repl-backlog').detail).toMatch(
        new RegExp(`${m} repl-backlog-size [\\d.]+ [KMG]?B for `),
      );
      expect(item(report, 'source-psync').detail).toContain(m);
      expect(item(report, 'heartbeat-writable').detail).toContain(`${m}: redis-dts:heartbeat:precheck:`);
    }
    // The keys of all three masters: the seed alone holds one of them.
    expect(item(report, 'source-connect').detail).toContain('3 keys in 1 db over 3 masters');
    expect(item(report, 'repl-backlog').detail).toContain('full sync of 3 keys');
    expect(item(report, 'target-memory').detail).toContain('summed over its 3 masters');
    expect(item(report, 'modules').detail).toContain(`read on the source node ${masters[0]} only`);
    expect(report.source).toMatchObject({ clusterEnabled: true, dbs: [0] });
    expect(await leftovers(srcCluster.nodes)).toEqual([]);
    expect(await empty.cli('DBSIZE')).toBe('0');
  });

  it('a replica as the seed is reported, and the masters are still the ones checked', async () => {
    const replica = srcCluster.replicas[0]!;
    const report = await check({ source: replica.url, target: empty.url });
    expect(notPassed(report)).toEqual([]);
    expect(item(report, 'source-cluster').detail).toContain(`the URL names replica ${at(replica)}`);
    expect(item(report, 'source-psync').detail).toContain(at(srcCluster.masters[0]!));
  });

  it('a master without PSYNC permission fails, naming that master', async () => {
    const m = srcCluster.masters[2]!;
    const pw = 'Psync-Us3r-Secret';
    // ACL users are per node: the same user on every master, but one of them denies PSYNC.
    for (const node of srcCluster.masters) {
      const deny = node === m ? ['-psync'] : [];
      await node.cli('ACL', 'SETUSER', 'syncer', 'reset', 'on', `>${pw}`, '~*', '&*', '+@all', ...deny);
    }
    try {
      const url = `redis://syncer:${pw}@127.0.0.1:${srcCluster.masters[0]!.port}`;
      const report = await check({ source: url, target: empty.url });
      expect(item(report, 'source-psync')).toMatchObject({
        status: 'failed',
        detail: `${at(m)}: ACL user 'syncer' may not run PSYNC on the source`,
      });
    } finally {
      for (const node of srcCluster.masters) await node.cli('ACL', 'DELUSER', 'syncer');
    }
  });
});

describe('an incomplete cluster', () => {
  it('fails the topology item with the CLUSTER_INCOMPLETE message and skips the per-node items', async () => {
    const seed = dstCluster.masters[0]!;
    // The seed stops serving 100 of its slots; no other master claims them.
    await seed.cli('CLUSTER', 'DELSLOTSRANGE', '0', '99');
    const report = await check({ source: standalone.url, target: dstCluster.url });
    expect(item(report, 'target-connect').status).toBe('passed');
    expect(item(report, 'target-cluster')).toMatchObject({
      status: 'failed',
      detail: `cluster destination (layout read from ${at(seed)}): 100 of 16384 slots have no master (first: 0)`,
      fix: expect.stringContaining('wait until every slot is assigned'),
    });
    for (const id of [
      'target-writable',
      'existing-keys',
      'target-memory',
      'target-eviction',
      'dump-compat',
      'target-bulk-limit',
    ]) {
      expect(item(report, id)).toMatchObject({
        status: 'skipped',
        detail:
          "needs the destination cluster's layout, which could not be read (see 'Destination topology')",
      });
    }
    expect(item(report, 'dbs-exist').status).toBe('passed');
    expect(report.status).toBe('failed');
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { MINIMAL_ACL_RULES, OCCASIONAL_ACL_RULES } from '../../lib/redis/minimal-acl.ts';
import { runCli, startCli, syncArgs, watchCli } from '../support/cli.ts';
import { assertSameKeys } from '../support/cluster-compare.ts';
import { type RedisClusterProcess, startRedisCluster } from '../support/redis-cluster.ts';
import { stopAllRedis } from '../support/redis-server.ts';
import { startWriters } from '../support/writers.ts';

// ACL users are per node: a cluster's least-privilege user exists, with the same rules, on every node.

const PASSWORD = 'Cluster-Least-Priv1lege';
const dirs: string[] = [];
const clusters: RedisClusterProcess[] = [];

afterAll(async () => {
  await Promise.all(clusters.map((c) => c.stop()));
  await stopAllRedis();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'redis-dts-acl-cluster-'));
  dirs.push(d);
  return d;
}

async function cluster(): Promise<RedisClusterProcess> {
  const c = await startRedisCluster({ masters: 3, args: ['--repl-backlog-size', '64mb'] });
  clusters.push(c);
  return c;
}

/** The user on every node of the cluster; the URL of its first master logged in as that user. */
async function clusterUser(c: RedisClusterProcess, name: string, rules: string): Promise<string> {
  for (const node of c.nodes) {
    expect(await node.cli('ACL', 'SETUSER', name, 'reset', 'on', `>${PASSWORD}`, ...rules.split(' '))).toBe(
      'OK',
    );
  }
  return c.url.replace('redis://', `redis://${name}:${PASSWORD}@`);
}

async function seed(c: RedisClusterProcess, count: number): Promise<void> {
  const client = new Cluster([{ host: c.masters[0]!.host, port: c.masters[0]!.port }]);
  try {
    await Promise.all(Array.from({ length: count }, (_, i) => client.set(`seed:${i}`, `v${i}`)));
  } finally {
    client.disconnect();
  }
}

describe('least-privilege ACL users on clusters (README "ACL users")', () => {
  it('cluster to cluster, full+incremental: the minimal rules plus +cluster|slots sync under the writers', async () => {
    const source = await cluster();
    const target = await cluster();
    await seed(source, 3000);
    const src = await clusterUser(
      source,
      'src',
      `${MINIMAL_ACL_RULES.source.psync} ${OCCASIONAL_ACL_RULES.cluster}`,
    );
    const dst = await clusterUser(
      target,
      'dst',
      `${MINIMAL_ACL_RULES.target.psync} ${OCCASIONAL_ACL_RULES.cluster}`,
    );
    const writers = startWriters({ url: source.url, dbs: [0], writers: 2, cluster: true, prefix: 'acl:' });
    const cli = watchCli(startCli(syncArgs(src, dst, stateDir(), ['--until', 'caught-up', '--dbs', '0'])));
    await cli.until('incremental sync: applying changes', 90_000);
    await new Promise((r) => setTimeout(r, 700));
    expect((await writers.stop()).ops).toBeGreaterThan(0);
    const r = await cli.doneWithin(90_000);
    expect(r.code, cli.output()).toBe(0);
    expect(
      await assertSameKeys(
        source.masters.map((m) => m.url),
        target.masters.map((m) => m.url),
      ),
    ).toBeGreaterThan(2500);
  }, 240_000);

  it('without +cluster|slots: the precheck stops, naming CLUSTER SLOTS', async () => {
    const source = await cluster();
    const target = await cluster();
    const src = await clusterUser(source, 'src', MINIMAL_ACL_RULES.source.psync);
    const dst = await clusterUser(
      target,
      'dst',
      `${MINIMAL_ACL_RULES.target.psync} ${OCCASIONAL_ACL_RULES.cluster}`,
    );
    const r = await runCli(syncArgs(src, dst, stateDir(), ['--until', 'caught-up']));
    const out = r.stdout + r.stderr;
    expect(r.code, out).not.toBe(0);
    expect(out).toMatch(/CLUSTER.SLOTS/i);
    // The fix names the rule to grant.
    expect(out).toContain('ACL SETUSER src +cluster|slots');
    expect(out).toMatch(/NOPERM|permission/i);
  }, 120_000);
});

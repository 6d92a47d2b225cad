import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { startWriters, type Writers } from '../support/writers.ts';

const servers: RedisProcess[] = [];
const writers: Writers[] = [];
const proxies: TcpProxy[] = [];
const clients: Redis[] = [];

afterEach(async () => {
  await Promise.all(writers.splice(0).map((w) => w.stop()));
  for (const c of clients.splice(0)) c.disconnect();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});
afterAll(stopAllRedis);

async function server(): Promise<RedisProcess> {
  const s = await startRedis();
  servers.push(s);
  return s;
}

function write(url: string): Writers {
  const w = startWriters({ url });
  writers.push(w);
  return w;
}

function client(url: string): Redis {
  const c = new Redis(url, { protocol: 2, maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

/** Polls until cond holds; the bound only keeps a broken build from hanging (not a timing assertion). */
async function waitFor(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(20);
  }
}

async function masterOffset(s: RedisProcess): Promise<string | undefined> {
  return /master_repl_offset:(\d+)/.exec(await s.cli('INFO', 'replication'))?.[1];
}

/** SCAN expires what it meets on a master, so this also makes the master propagate those DELs. */
async function volatileKeysLeft(s: RedisProcess, db: number): Promise<boolean> {
  return (await s.cli('-n', String(db), '--scan', '--pattern', 'w:volatile:*')) !== '';
}

describe('startWriters', () => {
  it('runs a mix of non-idempotent commands across dbs 0 and 1', async () => {
    const s = await server();
    const w = write(s.url);
    await sleep(1500);
    const stats = await w.stop();

    expect(stats.ops).toBeGreaterThan(100);
    expect(Object.keys(stats.byCommand).length).toBeGreaterThanOrEqual(10);
    expect(Object.values(stats.byCommand).reduce((a, b) => a + b, 0)).toBe(stats.ops);
    expect(stats.errors).toBeLessThan(stats.ops);
    expect(Number(await s.cli('-n', '0', 'DBSIZE'))).toBeGreaterThan(0);
    expect(Number(await s.cli('-n', '1', 'DBSIZE'))).toBeGreaterThan(0);
    const commandstats = await s.cli('INFO', 'commandstats');
    for (const cmd of ['incr', 'lpush', 'eval', 'exec', 'xadd']) {
      expect(commandstats).toMatch(new RegExp(`^cmdstat_${cmd}:calls=[1-9]`, 'm'));
    }
  });

  it('leaves a native replica with the same dataset (the reference for our replicator)', async () => {
    const master = await server();
    const replica = await server();
    await replica.cli('REPLICAOF', master.host, String(master.port));
    await waitFor(
      async () => (await replica.cli('INFO', 'replication')).includes('master_link_status:up'),
      'the replica link',
    );

    const w = write(master.url);
    await sleep(2000);
    const stats = await w.stop();
    expect(stats.ops).toBeGreaterThan(0);

    // Short-lived keys must be gone from the master (their DELs propagated) before digests can agree.
    await waitFor(
      async () => !(await volatileKeysLeft(master, 0)) && !(await volatileKeysLeft(master, 1)),
      'the volatile keys to expire',
    );
    await waitFor(
      async () => (await masterOffset(replica)) === (await masterOffset(master)),
      'the replica to catch up',
    );
    const [masterDigest, replicaDigest] = await Promise.all([
      master.cli('DEBUG', 'DIGEST'),
      replica.cli('DEBUG', 'DIGEST'),
    ]);
    expect(masterDigest).not.toBe('0'.repeat(40));
    expect(replicaDigest).toBe(masterDigest);
  });
});

describe('startTcpProxy', () => {
  it('relays traffic, drops every connection on demand and accepts new ones', async () => {
    const s = await server();
    const proxy = await startTcpProxy({ host: s.host, port: s.port });
    proxies.push(proxy);
    expect(proxy.url()).toBe(`redis://127.0.0.1:${proxy.port}`);

    const first = client(proxy.url());
    await first.set('through', 'proxy');
    expect(await first.get('through')).toBe('proxy');
    expect(proxy.connections).toBe(1);

    const closed = once(first, 'close');
    proxy.dropAll();
    await closed;

    const second = client(proxy.url());
    expect(await second.get('through')).toBe('proxy');
    expect(proxy.connections).toBe(2);
  });
});

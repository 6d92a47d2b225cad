import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { DtsError } from '../../lib/errors.ts';
import { HeartbeatWriter, heartbeatKey, isHeartbeat } from '../../lib/incremental/heartbeat.ts';
import type { RedisEndpoint } from '../../lib/redis/endpoint.ts';
import { RawConnection } from '../../lib/redis/raw-connection.ts';
import { PsyncClient } from '../../lib/replication/psync-client.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';

const PREFIX = 'redis-dts:heartbeat:';
const INTERVAL = 100;

const servers: RedisProcess[] = [];
const writers: HeartbeatWriter[] = [];
const links: PsyncClient[] = [];
const conns: RawConnection[] = [];

afterEach(async () => {
  await Promise.all(writers.splice(0).map((w) => w.stop()));
  await Promise.all(links.splice(0).map((l) => l.close()));
  for (const c of conns.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});
afterAll(stopAllRedis);

async function server(args: string[] = []): Promise<RedisProcess> {
  const s = await startRedis({ args });
  servers.push(s);
  return s;
}

function endpoint(s: RedisProcess, auth: { username?: string; password?: string } = {}): RedisEndpoint {
  return { role: 'source', host: s.host, port: s.port, ...auth };
}

async function connect(s: RedisProcess): Promise<RawConnection> {
  const c = await RawConnection.open(endpoint(s));
  conns.push(c);
  return c;
}

function writer(opts: ConstructorParameters<typeof HeartbeatWriter>[0] = {}): HeartbeatWriter {
  const w = new HeartbeatWriter(opts);
  writers.push(w);
  return w;
}

/** Liveness only: polls until `check` holds, failing after a generous deadline. */
async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function timeMs(reply: unknown): number {
  const [s, us] = reply as Buffer[];
  return Number(String(s)) * 1000 + Math.floor(Number(String(us)) / 1000);
}

describe('HeartbeatWriter', () => {
  it('writes the source TIME in ms, advancing every interval, with an expiry', async () => {
    const s = await server();
    const w = writer();
    await w.start(endpoint(s), { taskId: 'task-1', prefix: PREFIX, intervalMs: INTERVAL });
    expect(w.key).toEqual(Buffer.from('redis-dts:heartbeat:task-1'));
    expect(w.beats).toBe(1);

    const c = await connect(s);
    const seen: { value: number; time: number }[] = [];
    await waitFor('five distinct heartbeat values', async () => {
      const [value, time] = await c.pipeline([['GET', w.key], ['TIME']]);
      const v = Number(String(value));
      if (seen.length === 0 || seen.at(-1)!.value !== v) seen.push({ value: v, time: timeMs(time) });
      return seen.length >= 5 || undefined;
    });
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.value).toBeGreaterThan(seen[i - 1]!.value);
    for (const { value, time } of seen) {
      expect(Number.isSafeInteger(value)).toBe(true);
      expect(Math.abs(time - value)).toBeLessThanOrEqual(1000);
    }
    const pttl = Number(await s.cli('PTTL', 'redis-dts:heartbeat:task-1'));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000);
    expect(w.lastError).toBeUndefined();
    expect(w.consecutiveFailures).toBe(0);
  });

  it('puts the shard tag in braces', async () => {
    const s = await server();
    const w = writer();
    await w.start(endpoint(s), { taskId: 't', prefix: PREFIX, intervalMs: INTERVAL, shardTag: 'a1' });
    expect(w.key.toString()).toBe('redis-dts:heartbeat:t:{a1}');
    const first = w.lastValueMs!;
    // Another beat may have landed in the meantime (the interval is short): the same key, a later time.
    expect(Number(await s.cli('GET', 'redis-dts:heartbeat:t:{a1}'))).toBeGreaterThanOrEqual(first);
  });

  it('stop() removes the key and writes no more', async () => {
    const s = await server();
    const w = writer();
    await w.start(endpoint(s), { taskId: 'task-2', prefix: PREFIX, intervalMs: INTERVAL });
    await waitFor('a second beat', () => w.beats >= 2 || undefined);
    await w.stop();
    expect(await s.cli('EXISTS', 'redis-dts:heartbeat:task-2')).toBe('0');
    const beats = w.beats;
    await new Promise((r) => setTimeout(r, 3 * INTERVAL));
    expect(await s.cli('EXISTS', 'redis-dts:heartbeat:task-2')).toBe('0');
    expect(w.beats).toBe(beats);
  });

  it('reconnects after its connection is killed', async () => {
    const s = await server();
    const w = writer();
    await w.start(endpoint(s), { taskId: 'task-3', prefix: PREFIX, intervalMs: INTERVAL });
    const list = await s.cli('CLIENT', 'LIST');
    const id = /id=(\d+) .*name=redis-dts-heartbeat/.exec(list)?.[1];
    expect(id).toBeDefined();
    expect(await s.cli('CLIENT', 'KILL', 'ID', id!)).toBe('1');
    const before = w.beats;
    await waitFor('beats after the kill', () => w.beats >= before + 2 || undefined);
    expect(w.lastError).toBeUndefined();
    const after = await s.cli('CLIENT', 'LIST');
    expect(/id=(\d+) .*name=redis-dts-heartbeat/.exec(after)?.[1]).not.toBe(id);
  });

  it('reports NOPERM once through onError after N failures, without crashing', async () => {
    const s = await server();
    await s.cli('ACL', 'SETUSER', 'reader', 'on', '>readerpw', '~*', '+@read', '+time', '+ping');
    const errors: DtsError[] = [];
    const w = writer({ maxConsecutiveFailures: 3, onError: (e) => errors.push(e) });
    await w.start(endpoint(s, { username: 'reader', password: 'readerpw' }), {
      taskId: 'ro',
      prefix: PREFIX,
      intervalMs: INTERVAL,
    });
    expect(w.beats).toBe(0);
    expect(w.lastError?.code).toBe('HEARTBEAT_NOPERM');
    await waitFor('the onError report', () => errors[0]);
    // Keeps trying, but reports a streak only once.
    await waitFor('more failures', () => w.consecutiveFailures >= 5 || undefined);
    expect(errors).toHaveLength(1);
    const e = errors[0]!;
    expect(e.name).toBe('DtsError');
    expect(e.code).toBe('HEARTBEAT_NOPERM');
    expect(e.message).toContain('3 heartbeat writes in a row failed');
    expect(e.message).toContain("'reader' may not write the heartbeat key");
    expect(e.fix).toContain('+set');
    expect(e.fix).toContain('~redis-dts:heartbeat:*');
    expect(e.fix).toContain('--no-heartbeat');
    expect(`${e.message} ${e.fix}`).not.toContain('readerpw');
    expect(await s.cli('EXISTS', 'redis-dts:heartbeat:ro')).toBe('0');

    // Granting the permission heals it without a restart.
    await s.cli('ACL', 'SETUSER', 'reader', '+set', '+del');
    await waitFor('a successful beat', () => w.beats >= 1 || undefined);
    await waitFor('the error to clear', () => w.lastError === undefined || undefined);
    expect(w.consecutiveFailures).toBe(0);
  });

  it('reaches a native replica through replication, and stop() removes it there too', async () => {
    const source = await server();
    const replica = await server();
    await replica.cli('REPLICAOF', source.host, String(source.port));
    await waitFor(
      'the replica link',
      async () => (await replica.cli('INFO', 'replication')).includes('master_link_status:up') || undefined,
    );
    const w = writer();
    await w.start(endpoint(source), { taskId: 'rep', prefix: PREFIX, intervalMs: INTERVAL });
    const first = w.lastValueMs!;
    const value = await waitFor('the heartbeat on the replica', async () => {
      const v = await replica.cli('GET', 'redis-dts:heartbeat:rep');
      return v !== '' && Number(v) >= first ? Number(v) : undefined;
    });
    expect(Number.isSafeInteger(value)).toBe(true);
    await w.stop();
    await waitFor(
      'the key gone on the replica',
      async () => (await replica.cli('EXISTS', 'redis-dts:heartbeat:rep')) === '0' || undefined,
    );
  });

  it('isHeartbeat recognizes exactly the SET the replication stream carries', async () => {
    const s = await server();
    const commands: Buffer[][] = [];
    const link = await PsyncClient.connect(endpoint(s), {
      rdb: 'discard',
      onCommand: (argv) => commands.push(argv.map((a) => Buffer.from(a))),
    });
    links.push(link);
    // Another task's heartbeat, and a key that only starts like ours, go through the same stream.
    const c = await connect(s);
    await c.call(['SET', 'redis-dts:heartbeat:task-10', '123']);
    await c.call(['SET', 'redis-dts:heartbeat:other', '456']);
    const w = writer();
    await w.start(endpoint(s), { taskId: 'task-1', prefix: PREFIX, intervalMs: INTERVAL, shardTag: 'x' });
    const first = w.lastValueMs!;

    const hb = await waitFor('the heartbeat in the stream', () =>
      commands.find((argv) => isHeartbeat(argv, PREFIX, 'task-1') !== undefined),
    );
    expect(isHeartbeat(hb, PREFIX, 'task-1')).toBe(first);
    // What the stream carries: the relative expiry rewritten to an absolute one.
    expect(hb.map(String).slice(0, 4)).toEqual([
      'SET',
      'redis-dts:heartbeat:task-1:{x}',
      String(first),
      'PXAT',
    ]);
    expect(Number(String(hb[4]))).toBeGreaterThan(first);
    expect(isHeartbeat(hb, PREFIX, 'task-2')).toBeUndefined();
    expect(isHeartbeat(hb, 'other-prefix:', 'task-1')).toBeUndefined();

    const sets = commands.filter((argv) => String(argv[0]).toUpperCase() === 'SET');
    const others = sets.filter((argv) => String(argv[1]) !== 'redis-dts:heartbeat:task-1:{x}');
    expect(others.map((argv) => String(argv[1]))).toEqual([
      'redis-dts:heartbeat:task-10',
      'redis-dts:heartbeat:other',
    ]);
    for (const argv of others) expect(isHeartbeat(argv, PREFIX, 'task-1')).toBeUndefined();
  });
});

describe('isHeartbeat', () => {
  const b = (...args: string[]) => args.map((a) => Buffer.from(a));

  it('accepts any case of SET, with or without options', () => {
    expect(isHeartbeat(b('set', 'redis-dts:heartbeat:t', '1764000000123'), PREFIX, 't')).toBe(1764000000123);
    expect(isHeartbeat(b('SeT', 'redis-dts:heartbeat:t', '42', 'PXAT', '99'), PREFIX, 't')).toBe(42);
  });

  it('accepts the per-shard key and a custom prefix', () => {
    expect(isHeartbeat(b('SET', 'hb/t:{s1}', '7'), 'hb/', 't')).toBe(7);
    expect(heartbeatKey('hb/', 't', 's1')).toEqual(Buffer.from('hb/t:{s1}'));
  });

  it('rejects other commands, other keys and values that are not whole ms', () => {
    expect(isHeartbeat(b('GET', 'redis-dts:heartbeat:t'), PREFIX, 't')).toBeUndefined();
    expect(isHeartbeat(b('SETNX', 'redis-dts:heartbeat:t', '1'), PREFIX, 't')).toBeUndefined();
    expect(isHeartbeat(b('DEL', 'redis-dts:heartbeat:t', '1'), PREFIX, 't')).toBeUndefined();
    expect(isHeartbeat(b('SET', 'redis-dts:heartbeat:tt', '1'), PREFIX, 't')).toBeUndefined();
    expect(isHeartbeat(b('SET', 'redis-dts:heartbeat:t:x', '1'), PREFIX, 't')).toBeUndefined();
    expect(isHeartbeat(b('SET', 'redis-dts:heartbeat:t', '1.5'), PREFIX, 't')).toBeUndefined();
    expect(isHeartbeat(b('SET', 'redis-dts:heartbeat:t', ''), PREFIX, 't')).toBeUndefined();
    expect(isHeartbeat(b('SET', 'redis-dts:heartbeat:t', '-1'), PREFIX, 't')).toBeUndefined();
  });
});

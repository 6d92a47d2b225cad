import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DtsError } from '../../lib/errors.ts';
import { type ApplyCommand, MarkerApplier } from '../../lib/incremental/marker-applier.ts';
import type { RedisEndpoint } from '../../lib/redis/endpoint.ts';
import { RawConnection } from '../../lib/redis/raw-connection.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';

const REPLID = 'a'.repeat(40);
const MARKER_DB = 0;

function cmd(db: number, ...args: (string | Buffer)[]): ApplyCommand {
  return { db, argv: args.map((a) => (Buffer.isBuffer(a) ? a : Buffer.from(a))) };
}

describe('MarkerApplier', () => {
  let target: RedisProcess;
  let endpoint: RedisEndpoint;
  let raw: RawConnection;
  const open: MarkerApplier[] = [];
  let taskN = 0;

  async function openApplier(taskId = `task${++taskN}`): Promise<MarkerApplier> {
    const a = await MarkerApplier.open(endpoint, { taskId, shardId: 'shard0', markerDb: MARKER_DB });
    open.push(a);
    return a;
  }

  async function get(db: number, key: string | Buffer): Promise<unknown> {
    const [, v] = await raw.pipeline([
      ['SELECT', db],
      ['GET', key],
    ]);
    return v;
  }

  beforeAll(async () => {
    target = await startRedis();
    endpoint = { role: 'target', host: target.host, port: target.port };
    raw = await RawConnection.open(endpoint);
  });
  afterEach(async () => {
    for (const a of open.splice(0)) a.destroy();
    await target.cli('FLUSHALL');
  });
  afterAll(async () => {
    await raw.close();
    await stopAllRedis();
  });

  it('without a transaction: runs the batch, then moves the marker; a failed command leaves the marker before it', async () => {
    const a = await openApplier('t-unwrapped');
    await a.applyUnwrapped([cmd(1, 'INCR', 'n'), cmd(0, 'SET', 's', 'v')], {
      replid: REPLID,
      offset: 10,
      db: 0,
    });
    expect(await get(1, 'n')).toEqual(Buffer.from('1'));
    expect(await a.readPosition()).toEqual({ replid: REPLID, offset: 10, db: 0 });
    const failed = await a
      .applyUnwrapped([cmd(1, 'INCR', 'n'), cmd(0, 'LPUSH', 's', 'x'), cmd(1, 'INCR', 'n')], {
        replid: REPLID,
        offset: 20,
        db: 0,
      })
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(DtsError);
    expect((failed as DtsError).code).toBe('APPLY_FAILED');
    expect((failed as DtsError).message).toContain('db0 LPUSH');
    // Without MULTI every command ran, the failed one aside, and so did the marker SET: it was set back, so
    // a resume copies the keys written after it again.
    expect(await get(1, 'n')).toEqual(Buffer.from('3'));
    expect(await a.readPosition()).toEqual({ replid: REPLID, offset: 10, db: 0 });
    await expect(a.applyUnwrapped([], { replid: REPLID, offset: 30 })).rejects.toMatchObject({
      code: 'APPLY_AFTER_FAILURE',
    });
  });

  it('applies a batch on several dbs together with its marker', async () => {
    const a = await openApplier('t-basic');
    expect(a.markerKey).toBe('redis-dts:marker:t-basic:shard0');
    expect(await a.readPosition()).toBeUndefined();
    await a.apply(
      [
        cmd(1, 'INCR', 'n'),
        cmd(1, 'INCR', 'n'),
        cmd(2, 'LPUSH', 'l', 'x', 'y'),
        cmd(3, 'HINCRBY', 'h', 'f', '5'),
        cmd(0, 'APPEND', 's', 'ab'),
        cmd(2, 'APPEND', 's', 'cd'),
      ],
      { replid: REPLID, offset: 120 },
    );
    expect(await target.cli('-n', '1', 'GET', 'n')).toBe('2');
    expect(await target.cli('-n', '2', 'LRANGE', 'l', '0', '-1')).toBe('y\nx');
    expect(await target.cli('-n', '3', 'HGET', 'h', 'f')).toBe('5');
    expect(await target.cli('-n', '0', 'GET', 's')).toBe('ab');
    expect(await target.cli('-n', '2', 'GET', 's')).toBe('cd');
    // <replid>:<offset>:<db>, the db empty while the stream named none.
    expect(await target.cli('-n', '0', 'GET', a.markerKey)).toBe(`${REPLID}:120:`);
    expect(await a.readPosition()).toEqual({ replid: REPLID, offset: 120 });
    await a.apply([], { replid: REPLID, offset: 130, db: 7 });
    expect(await target.cli('-n', '0', 'GET', a.markerKey)).toBe(`${REPLID}:130:7`);
    expect(await a.readPosition()).toEqual({ replid: REPLID, offset: 130, db: 7 });
    expect(a.pendingBatches).toBe(0);
  });

  it('resolves pipelined batches in order and leaves the marker at the last', async () => {
    const a = await openApplier();
    const order: number[] = [];
    const all: Promise<void>[] = [];
    for (let i = 1; i <= 20; i++) {
      const p = a.apply([cmd(i % 3, 'RPUSH', 'seq', String(i)), cmd(5, 'INCR', 'count')], {
        replid: REPLID,
        offset: i * 10,
      });
      all.push(p.then(() => void order.push(i)));
    }
    expect(a.pendingBatches).toBe(20);
    expect(a.pendingBytes).toBeGreaterThan(0);
    await Promise.all(all);
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(a.pendingBatches).toBe(0);
    expect(a.pendingBytes).toBe(0);
    expect(await target.cli('-n', '5', 'GET', 'count')).toBe('20');
    expect(await target.cli('-n', '1', 'LRANGE', 'seq', '0', '-1')).toBe('1\n4\n7\n10\n13\n16\n19');
    expect(await a.readPosition()).toEqual({ replid: REPLID, offset: 200 });
  });

  it('reads back the written position after a fresh open, and removes the marker', async () => {
    const first = await openApplier('t-reopen');
    await first.apply([cmd(4, 'SET', 'k', 'v')], { replid: REPLID, offset: 987654321 });
    await first.close();
    const second = await openApplier('t-reopen');
    expect(await second.readPosition()).toEqual({ replid: REPLID, offset: 987654321 });
    // Another task's marker is a different key.
    expect(await (await openApplier('t-other')).readPosition()).toBeUndefined();
    await second.removeMarker();
    expect(await second.readPosition()).toBeUndefined();
    expect(await target.cli('EXISTS', second.markerKey)).toBe('0');
    expect(await target.cli('-n', '4', 'GET', 'k')).toBe('v');
  });

  it('after a crash right after the write, holds both the batch and its marker, or neither', async () => {
    const a = await openApplier('t-crash');
    await a.apply([cmd(1, 'INCR', 'c'), cmd(2, 'LPUSH', 'cl', 'one')], { replid: REPLID, offset: 10 });
    const lost = a.apply([cmd(1, 'INCR', 'c'), cmd(2, 'LPUSH', 'cl', 'two')], { replid: REPLID, offset: 20 });
    a.destroy();
    await expect(lost).rejects.toMatchObject({ code: 'APPLY_INTERRUPTED' });
    await waitClientGone(target);
    const position = await (await openApplier('t-crash')).readPosition();
    const counter = await target.cli('-n', '1', 'GET', 'c');
    const list = await target.cli('-n', '2', 'LRANGE', 'cl', '0', '-1');
    if (position?.offset === 20) {
      expect([counter, list]).toEqual(['2', 'two\none']);
    } else {
      expect(position).toEqual({ replid: REPLID, offset: 10 });
      expect([counter, list]).toEqual(['1', 'one']);
    }
  });

  it('after a crash while the server holds the transaction unexecuted, holds neither', async () => {
    const a = await openApplier('t-crash-paused');
    await a.apply([cmd(1, 'INCR', 'p')], { replid: REPLID, offset: 10 });
    // Paused writes: the server holds the transaction's first write unqueued, and the client dies meanwhile.
    await target.cli('CLIENT', 'PAUSE', '60000', 'WRITE');
    try {
      const lost = a.apply([cmd(1, 'INCR', 'p'), cmd(3, 'SET', 'q', 'x')], { replid: REPLID, offset: 20 });
      await waitPostponed(target);
      a.destroy();
      await expect(lost).rejects.toMatchObject({ code: 'APPLY_INTERRUPTED' });
      await waitClientGone(target);
    } finally {
      await target.cli('CLIENT', 'UNPAUSE');
    }
    const b = await openApplier('t-crash-paused');
    expect(await b.readPosition()).toEqual({ replid: REPLID, offset: 10 });
    expect(await target.cli('-n', '1', 'GET', 'p')).toBe('1');
    expect(await target.cli('-n', '3', 'EXISTS', 'q')).toBe('0');
    // Resuming from the marker applies batch 2 once.
    await b.apply([cmd(1, 'INCR', 'p'), cmd(3, 'SET', 'q', 'x')], { replid: REPLID, offset: 20 });
    expect(await target.cli('-n', '1', 'GET', 'p')).toBe('2');
  });

  it('refuses a batch at queue time: nothing applied, marker unchanged, later batches refused', async () => {
    const a = await openApplier();
    await a.apply([cmd(1, 'SET', 'qa', '1')], { replid: REPLID, offset: 5 });
    const err = await a
      .apply([cmd(1, 'INCR', 'qa'), cmd(2, 'SET', 'qb', 'x'), cmd(2, 'LPUSH', Buffer.from([0x00, 0xff]))], {
        replid: REPLID,
        offset: 9,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DtsError);
    expect((err as DtsError).code).toBe('APPLY_REJECTED');
    expect((err as DtsError).message).toContain('db2 LPUSH "\\x00\\xff"');
    expect((err as DtsError).message).toContain('wrong number of arguments');
    expect((err as DtsError).message).toContain('nothing of the batch');
    expect(await target.cli('-n', '1', 'GET', 'qa')).toBe('1');
    expect(await target.cli('-n', '2', 'EXISTS', 'qb')).toBe('0');
    expect(await a.readPosition()).toEqual({ replid: REPLID, offset: 5 });
    await expect(a.apply([cmd(1, 'INCR', 'qa')], { replid: REPLID, offset: 12 })).rejects.toMatchObject({
      code: 'APPLY_AFTER_FAILURE',
    });
    expect(await target.cli('-n', '1', 'GET', 'qa')).toBe('1');
  });

  it('reports a batch pipelined behind a refused one that committed: the marker skipped a batch', async () => {
    const a = await openApplier();
    const refused = a.apply([cmd(1, 'INCR')], { replid: REPLID, offset: 5 });
    const behind = a.apply([cmd(1, 'SET', 'after', '1')], { replid: REPLID, offset: 8 });
    await expect(refused).rejects.toMatchObject({ code: 'APPLY_REJECTED' });
    await expect(behind).rejects.toMatchObject({ code: 'APPLY_SKIPPED_BATCH' });
    expect(await a.readPosition()).toEqual({ replid: REPLID, offset: 8 });
  });

  it('reports a runtime error: Redis ran the rest of the batch and moved the marker', async () => {
    const a = await openApplier();
    await a.apply([cmd(2, 'SET', 'str', 'plain')], { replid: REPLID, offset: 30 });
    const err = await a
      .apply([cmd(1, 'INCR', 'r1'), cmd(2, 'LPUSH', 'str', 'x'), cmd(2, 'APPEND', 'r2', 'tail')], {
        replid: REPLID,
        offset: 40,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DtsError);
    expect((err as DtsError).code).toBe('APPLY_PARTIAL');
    expect((err as DtsError).message).toContain('db2 LPUSH "str"');
    expect((err as DtsError).message).toContain('WRONGTYPE');
    // The documented state: every other command ran, the failing one did nothing, the marker moved.
    expect(await target.cli('-n', '1', 'GET', 'r1')).toBe('1');
    expect(await target.cli('-n', '2', 'GET', 'str')).toBe('plain');
    expect(await target.cli('-n', '2', 'GET', 'r2')).toBe('tail');
    expect((err as DtsError).message).toContain('the marker was moved to its end');
    expect(await a.readPosition()).toEqual({ replid: REPLID, offset: 40 });
  });

  it('reports a refused MULTI: the commands ran one by one, outside any transaction', async () => {
    await target.cli('ACL', 'SETUSER', 'nomulti', 'on', '>pw', '~*', '+@all', '-multi');
    const a = await MarkerApplier.open(
      { ...endpoint, username: 'nomulti', password: 'pw' },
      { taskId: 'no-multi', shardId: 'shard0', markerDb: MARKER_DB },
    );
    open.push(a);
    try {
      await expect(a.apply([cmd(1, 'INCR', 'nm')], { replid: REPLID, offset: 3 })).rejects.toMatchObject({
        code: 'APPLY_NOT_ATOMIC',
      });
      expect(await target.cli('-n', '1', 'GET', 'nm')).toBe('1');
    } finally {
      await target.cli('ACL', 'DELUSER', 'nomulti');
    }
  });

  it('applies binary keys and values byte for byte', async () => {
    const a = await openApplier();
    const key = Buffer.from([0x00, 0x0d, 0x0a, 0xff, 0x24, 0x2a]);
    const value = Buffer.concat([Buffer.from('*1\r\n$4\r\nEXEC\r\n'), Buffer.alloc(300, 0xfe)]);
    await a.apply(
      [
        { db: 6, argv: [Buffer.from('SET'), key, value] },
        { db: 6, argv: [Buffer.from('HSET'), key.subarray(1), Buffer.from([0]), value] },
      ],
      { replid: REPLID, offset: 77 },
    );
    expect(await get(6, key)).toEqual(value);
    const [, field] = await raw.pipeline([
      ['SELECT', 6],
      ['HGET', key.subarray(1), Buffer.from([0])],
    ]);
    expect(field).toEqual(value);
    expect(await a.readPosition()).toEqual({ replid: REPLID, offset: 77 });
  });
});

/** Waits until the applier's killed connection is gone from the server. */
async function waitClientGone(server: RedisProcess): Promise<void> {
  await waitFor(server, (list) => !list.includes('name=redis-dts-apply'));
}

/** Waits until the applier's connection is blocked by the pause (Redis 7.0 blocks the first queued write). */
async function waitPostponed(server: RedisProcess): Promise<void> {
  await waitFor(server, (list) =>
    list.split('\n').some((l) => l.includes('name=redis-dts-apply') && / flags=\w*b/.test(l)),
  );
}

async function waitFor(server: RedisProcess, ok: (clientList: string) => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (ok(await server.cli('CLIENT', 'LIST'))) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('condition not reached');
}

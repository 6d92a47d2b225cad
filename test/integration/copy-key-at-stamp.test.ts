import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDtsError } from '../../lib/errors.ts';
import { copyKeyAtStamp } from '../../lib/fullsync/copy-key-at-stamp.ts';
import { parseStamp } from '../../lib/fullsync/stamped-chunk-reader.ts';
import { type RedisProcess, startRedis } from '../support/redis-server.ts';

const PREFIX = 'redis-dts:tmp:test:';
const PAGE = 64 * 1024;

let sourceServer: RedisProcess;
let targetServer: RedisProcess;
let source: Redis;
let target: Redis;
let replicaServer: RedisProcess;
let writer: Redis;

beforeAll(async () => {
  [sourceServer, targetServer, replicaServer] = await Promise.all([startRedis(), startRedis(), startRedis()]);
  source = new Redis(sourceServer.url);
  target = new Redis(targetServer.url);
  writer = new Redis(sourceServer.url);
  // A replica gives the source a backlog, so its replication offset moves with every write.
  await replicaServer.cli('REPLICAOF', sourceServer.host, String(sourceServer.port));
  while (!(await replicaServer.cli('INFO', 'replication')).includes('master_link_status:up')) {
    await new Promise((r) => setTimeout(r, 20));
  }
});

afterAll(async () => {
  for (const c of [source, target, writer]) c?.disconnect();
  await Promise.all([sourceServer?.stop(), targetServer?.stop(), replicaServer?.stop()]);
});

async function offset(): Promise<number> {
  return parseStamp(await source.info('replication')).offset;
}

async function digest(c: Redis, key: string): Promise<string> {
  return String(((await c.call('DEBUG', 'DIGEST-VALUE', key)) as string[])[0]);
}

function copy(key: string, mode: 'after' | 'exact', attempts?: number) {
  return copyKeyAtStamp({
    source,
    target,
    key: Buffer.from(key),
    tempPrefix: PREFIX,
    maxCommandBytes: PAGE,
    sourceVersion: 70000,
    mode,
    ...(attempts !== undefined ? { attempts } : {}),
  });
}

describe('copyKeyAtStamp', () => {
  it('exact: a quiet key is copied with its expiry, stamped at the source position after its last part', async () => {
    await source.set('quiet', Buffer.alloc(10 * PAGE, 'q'));
    const before = await offset();
    await source.pexpireat('quiet', Date.now() + 3_600_000);
    const r = await copy('quiet', 'exact');
    expect(r.type).toBe('string');
    expect(r.stamp.offset).toBeGreaterThan(before);
    expect(r.stamp.offset).toBe(await offset());
    expect(await digest(target, 'quiet')).toBe(await digest(source, 'quiet'));
    expect(Number(await target.call('PEXPIRETIME', 'quiet'))).toBe(
      Number(await source.call('PEXPIRETIME', 'quiet')),
    );
  });

  it('exact: a key written during every attempt is refused with BIG_KEY_BUSY, nothing renamed', async () => {
    await source.del('hot');
    await source.rpush('hot', ...Array.from({ length: 20_000 }, (_, i) => `e${i}`));
    await target.set('hot', 'old');
    let writing = true;
    const appends = (async () => {
      while (writing) await writer.rpush('hot', 'more');
    })();
    const failure = await copy('hot', 'exact', 3).catch((e: unknown) => e);
    writing = false;
    await appends;
    expect(isDtsError(failure) && failure.code).toBe('BIG_KEY_BUSY');
    expect((failure as Error).message).toContain('"hot" was written during each of 3 copies in parts');
    expect(await target.get('hot')).toBe('old');
    expect(await target.keys(`${PREFIX}*`)).toEqual([]);
  });

  it('after: a key written during its copy is stamped past every write the copy shows (the catch-up re-copies it)', async () => {
    await source.del('busy');
    await source.rpush('busy', ...Array.from({ length: 20_000 }, (_, i) => `e${i}`));
    let writing = true;
    // before[n]: the source offset read just before write n, so write n ends past it.
    const before: number[] = [];
    const appends = (async () => {
      for (let n = 0; writing; n++) {
        before[n] = parseStamp(await writer.info('replication')).offset;
        await writer.rpush('busy', `more:${n}`);
      }
    })();
    const r = await copy('busy', 'after');
    writing = false;
    await appends;
    expect(r.type).toBe('list');
    const last = String(await target.lindex('busy', -1));
    expect(last, 'the copy saw writes made during it').toMatch(/^more:\d+$/);
    expect(r.stamp.offset).toBeGreaterThan(before[Number(last.slice(5))]!);
  });

  it('a key gone from the source is reported as none, stamped', async () => {
    await source.del('gone');
    const r = await copy('gone', 'exact');
    expect(r.type).toBe('none');
    expect(r.stamp.offset).toBe(await offset());
  });
});

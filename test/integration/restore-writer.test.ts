import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyErrorsError } from '../../lib/fullsync/key-errors.ts';
import { RestoreWriter } from '../../lib/fullsync/restore-writer.ts';
import type { Chunk } from '../../lib/fullsync/stamped-chunk-reader.ts';
import { RawConnection } from '../../lib/redis/raw-connection.ts';
import { type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';

describe('RestoreWriter', () => {
  let source: RedisProcess;
  let target: RedisProcess;
  let src: RawConnection;
  let dst: RawConnection;
  beforeAll(async () => {
    [source, target] = await Promise.all([startRedis(), startRedis()]);
    src = await RawConnection.open({ role: 'source', host: source.host, port: source.port });
    dst = await RawConnection.open({ role: 'target', host: target.host, port: target.port });
  });
  afterAll(async () => {
    await Promise.all([src.close(), dst.close()]);
    await stopAllRedis();
  });

  async function dump(key: string, value: string): Promise<Buffer> {
    await src.call(['SET', key, value]);
    return (await src.call(['DUMP', key])) as Buffer;
  }

  it('collects a key the destination refuses, names it, and writes the others', async () => {
    const good1 = await dump('k1', 'one');
    const corrupt = Buffer.from(await dump('k2', 'two'));
    corrupt[corrupt.length - 1]! ^= 0xff; // the CRC64 no longer matches
    const good3 = await dump('k3', 'three');
    const chunk: Chunk = {
      cursorAfter: '0',
      keys: ['k1', 'k2', 'k3', 'gone'].map((k) => Buffer.from(k)),
      payloads: [good1, corrupt, good3, null],
      expireAt: [0, 0, 4102444800123, 0],
      stamp: { replid: 'x', offset: 0 },
      bytes: good1.length + corrupt.length + good3.length,
    };
    const writer = new RestoreWriter(dst, { maxInFlightBytes: 1 << 20, maxPayloadBytes: 1 << 20 });
    const result = await writer.write(chunk);
    expect(result.written).toBe(2);
    expect(result.vanished).toBe(1);
    expect(result.errors.map((e) => e.key.toString())).toEqual(['k2']);
    expect(result.errors[0]!.error).toMatch(/checksum/i);
    expect(await target.cli('GET', 'k1')).toBe('one');
    expect(await target.cli('PEXPIRETIME', 'k3')).toBe('4102444800123');
    expect(await target.cli('EXISTS', 'k2')).toBe('0');
    expect(keyErrorsError(1, result.errors).message).toMatch(
      /^1 key\(s\) could not be written to the destination \("k2": .*checksum/i,
    );
  });

  it('leaves payloads above the destination limit to the caller instead of sending them', async () => {
    // Random bytes: DUMP compresses repetitive values below any limit.
    const big = await dump('big', randomBytes(5000).toString('hex'));
    const writer = new RestoreWriter(dst, { maxInFlightBytes: 1 << 20, maxPayloadBytes: 1000 });
    const result = await writer.write({
      cursorAfter: '0',
      keys: [Buffer.from('big')],
      payloads: [big],
      expireAt: [0],
      stamp: { replid: 'x', offset: 0 },
      bytes: big.length,
    });
    expect(result).toMatchObject({ written: 0, oversized: [0], errors: [] });
    expect(await target.cli('EXISTS', 'big')).toBe('0');
  });

  it('stops at once with a clear error on a fatal reply (out of memory)', async () => {
    await target.cli('CONFIG', 'SET', 'maxmemory', '1');
    try {
      const writer = new RestoreWriter(dst, { maxInFlightBytes: 1 << 20, maxPayloadBytes: 1 << 20 });
      const payload = await dump('k9', 'nine');
      await expect(
        writer.write({
          cursorAfter: '0',
          keys: [Buffer.from('k9')],
          payloads: [payload],
          expireAt: [0],
          stamp: { replid: 'x', offset: 0 },
          bytes: payload.length,
        }),
      ).rejects.toMatchObject({
        code: 'TARGET_OOM',
        message: expect.stringMatching(/out of memory.*partially written/),
      });
    } finally {
      await target.cli('CONFIG', 'SET', 'maxmemory', '0');
    }
  });
});

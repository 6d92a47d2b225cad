import type { Redis } from 'ioredis';
import { copyKeyInParts } from '../fullsync/copy-key-in-parts.ts';
import type { FullSyncUnit } from '../fullsync/copy-unit.ts';
import { connectAdmin } from '../redis/admin-client.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';

/**
 * copyUnit's `copyOversizedKey` for a CopyChunk invocation: keys whose DUMP exceeds the destination's
 * proto-max-bulk-len are copied in parts over ioredis connections opened on first use.
 * (full-sync-job.ts has the same helper, unexported; one of the two should go once it is exported.)
 */
export class OversizedKeyCopier {
  private readonly source: RedisEndpoint;
  private readonly target: RedisEndpoint;
  private readonly unit: FullSyncUnit;
  private readonly tempPrefix: string;
  private readonly maxCommandBytes: number;
  private clients?: Promise<[Redis, Redis]>;

  constructor(o: {
    source: RedisEndpoint;
    target: RedisEndpoint;
    unit: FullSyncUnit;
    taskId: string;
    /** The destination's proto-max-bulk-len: each write of a part stays well below it. */
    protoMaxBulkLen: number;
  }) {
    this.source = o.source;
    this.target = o.target;
    this.unit = o.unit;
    this.tempPrefix = `redis-dts:tmp:${o.taskId}:`;
    this.maxCommandBytes = Math.min(8 * 1024 * 1024, Math.floor(o.protoMaxBulkLen / 4));
  }

  async copy(key: Buffer, expireAt: number): Promise<void> {
    this.clients ??= Promise.all([
      connectAdmin(this.source, { db: this.unit.sourceDb }),
      connectAdmin(this.target, { db: this.unit.targetDb }),
    ]);
    const [source, target] = await this.clients;
    const result = await copyKeyInParts({
      source,
      target,
      key,
      pexpireAt: expireAt > 0 ? expireAt : -1,
      tempPrefix: this.tempPrefix,
      maxCommandBytes: this.maxCommandBytes,
    });
    // Vanished since its DUMP: the destination must not keep an older value.
    if (result.type === 'none') await target.del(key);
  }

  async close(): Promise<void> {
    if (!this.clients) return;
    const clients = await this.clients.catch(() => []);
    await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  }
}

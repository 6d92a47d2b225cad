import type { Redis } from 'ioredis';
import { connectAdmin } from '../redis/admin-client.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { standaloneRouting, type TargetRouting } from '../redis/target-routing.ts';
import type { MemoryBudget } from '../util/memory-budget.ts';
import { copyKeyAtStamp, type PartStampMode } from './copy-key-at-stamp.ts';
import { printableKey } from './copy-key-in-parts.ts';
import type { FullSyncUnit } from './copy-unit.ts';
import type { Stamp } from './stamped-chunk-reader.ts';

/**
 * copyUnit's and the re-copier's `copyInParts`: keys too big for the memory budget (or for one RESTORE
 * under the destination's proto-max-bulk-len) are copied in parts over ioredis connections opened on
 * first use, one key at a time in the whole process (MemoryBudget.oneBigAtATime), which also keeps a
 * WATCH on the source connection to the one key it guards.
 */
export class OversizedKeyCopier {
  private readonly source: RedisEndpoint;
  private readonly routing: TargetRouting;
  private readonly unit: FullSyncUnit;
  private readonly tempPrefix: string;
  private readonly maxCommandBytes: number;
  private readonly sourceVersion: number;
  private readonly budget: MemoryBudget;
  private readonly targetVersion: number | undefined;
  private sourceClient?: Promise<Redis>;
  /** Per destination node, opened when a key of its slots first needs it. */
  private readonly targetClients = new Map<number, Promise<Redis>>();
  private readonly onKey: ((printableKey: string) => void) | undefined;

  constructor(o: {
    source: RedisEndpoint;
    target: RedisEndpoint;
    /** A cluster destination's nodes; absent: `target` alone. */
    routing?: TargetRouting;
    unit: FullSyncUnit;
    taskId: string;
    /** The destination's proto-max-bulk-len: each write of a part stays well below it. */
    protoMaxBulkLen: number;
    sourceVersion: number;
    /** The destination's redis_version number, when it is older than the source (see copyKeyInParts). */
    targetVersion?: number;
    /** Parts are at most its partBytes; one key at a time per process. */
    budget: MemoryBudget;
    /** Told about each key before it is copied (progress output). */
    onKey?: (printableKey: string) => void;
  }) {
    this.onKey = o.onKey;
    this.source = o.source;
    this.routing = o.routing ?? standaloneRouting(o.target);
    this.unit = o.unit;
    this.tempPrefix = `redis-dts:tmp:${o.taskId}:`;
    this.maxCommandBytes = Math.min(o.budget.partBytes, Math.floor(o.protoMaxBulkLen / 4));
    this.sourceVersion = o.sourceVersion;
    this.budget = o.budget;
    this.targetVersion = o.targetVersion;
  }

  /** Copies `key` with its expiry and returns the stamp its value holds at (see PartStampMode). */
  async copy(key: Buffer, mode: PartStampMode): Promise<Stamp> {
    const copied = await this.budget.oneBigAtATime(() => this.copyNow(key, mode, false));
    return copied.stamp;
  }

  /**
   * Builds the key's value at a stamp (`exact`) in a temporary key and leaves the RENAME to the caller's
   * transaction (`pending`; absent when the key is gone from the source: the caller deletes it).
   */
  prepare(key: Buffer): Promise<{ stamp: Stamp; pending?: { tmp: Buffer; pexpireAt: number } }> {
    return this.budget.oneBigAtATime(() => this.copyNow(key, 'exact', true));
  }

  private async copyNow(key: Buffer, mode: PartStampMode, deferRename: boolean) {
    this.sourceClient ??= connectAdmin(this.source, { db: this.unit.sourceDb });
    const node = this.routing.nodeOf(key);
    let targetClient = this.targetClients.get(node);
    if (!targetClient) {
      targetClient = connectAdmin(this.routing.nodes[node]!, { db: this.unit.targetDb });
      this.targetClients.set(node, targetClient);
    }
    const [source, target] = await Promise.all([this.sourceClient, targetClient]);
    this.onKey?.(printableKey(key));
    const result = await copyKeyAtStamp({
      source,
      target,
      key,
      tempPrefix: this.tempPrefix,
      maxCommandBytes: this.maxCommandBytes,
      sourceVersion: this.sourceVersion,
      mode,
      deferRename,
      ...(this.targetVersion !== undefined ? { targetVersion: this.targetVersion } : {}),
    });
    // Gone from the source at the stamp: the destination must not keep an older value.
    if (result.type === 'none' && !deferRename) await target.del(key);
    return result;
  }

  async close(): Promise<void> {
    const opened = [this.sourceClient, ...this.targetClients.values()].filter((c) => c !== undefined);
    const clients = await Promise.all(opened.map((c) => c.catch(() => undefined)));
    await Promise.all(clients.map((c) => c?.quit().catch(() => c.disconnect())));
  }
}

/** Redis' default proto-max-bulk-len, which ElastiCache and MemoryDB keep unless a parameter group changes it. */
export const DEFAULT_PROTO_MAX_BULK_LEN = 512 * 1024 * 1024;

/** The destination's largest accepted bulk, and whether it was read (CONFIG GET) or assumed. */
export interface BulkLimit {
  bytes: number;
  assumed: boolean;
}

/**
 * The destination's largest accepted bulk. Where CONFIG is disabled (managed services) it cannot be
 * read and Redis' default is assumed; the precheck's "Destination bulk limit" item says so as a warning
 * (lib/precheck/bulk-limit.ts), and the errors of a value over the real limit say it (key-errors.ts).
 */
export async function protoMaxBulkLen(tgt: Redis): Promise<BulkLimit> {
  try {
    const reply = (await tgt.config('GET', 'proto-max-bulk-len')) as string[];
    const n = Number(reply[1]);
    return Number.isFinite(n) && n > 0
      ? { bytes: n, assumed: false }
      : { bytes: DEFAULT_PROTO_MAX_BULK_LEN, assumed: true };
  } catch {
    return { bytes: DEFAULT_PROTO_MAX_BULK_LEN, assumed: true };
  }
}

import type { Redis } from 'ioredis';
import { makeKeyFilter } from '../commands/key-filter.ts';
import type { CopyUnitOptions, FullSyncUnit } from '../fullsync/copy-unit.ts';
import { type BulkLimit, OversizedKeyCopier, protoMaxBulkLen } from '../fullsync/oversized-key-copier.ts';
import type { ProgressSink } from '../progress/progress-reporter.ts';
import { connectAdmin, type ServerInfo, serverInfo } from '../redis/admin-client.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { olderRdb } from '../redis/server-versions.ts';
import { openTargetRouting, type TargetRouting } from '../redis/target-routing.ts';
import type { TaskSpec } from '../task/spec.ts';
import { type MemoryBudget, processMemoryBudget, resolveMemoryBudget } from '../util/memory-budget.ts';
import { RateLimiter } from '../util/rate-limiter.ts';

const RESTORE_OVERHEAD = 1024;

/** How keys are copied to a destination that cannot RESTORE the source's payloads. */
export interface LogicalCopy {
  /** The destination's redis_version as a number: what it knows of streams (server-versions.ts). */
  targetVersion: number;
  /** Upper bound on one write command (a value's elements are split over several). */
  maxCommandBytes: number;
}

/**
 * What copying a unit needs from both servers (source INFO, the destination's proto-max-bulk-len), read
 * once, and the copyUnit options a task's spec gives: shared by CopyChunk and the incremental sync's
 * re-copy of a whole db.
 */
export class UnitCopyContext {
  readonly source: RedisEndpoint;
  readonly target: RedisEndpoint;
  readonly info: ServerInfo;
  /** The destination's INFO (the seed node of a cluster). */
  readonly targetInfo: ServerInfo;
  readonly maxBulk: number;
  /** CONFIG GET proto-max-bulk-len was refused (managed service): maxBulk is Redis' default. */
  readonly maxBulkAssumed: boolean;
  /** The destination's nodes: one server, or a cluster's masters. */
  readonly routing: TargetRouting;
  /** The process's memory budget, from the spec or the compute it runs on. */
  readonly budget: MemoryBudget;
  /**
   * Set when the destination reads an older RDB version than the source and the spec lets keys be
   * copied with type commands (fullSync.crossVersion logical): every copy and re-copy is logical.
   */
  readonly logical: LogicalCopy | undefined;
  private readonly spec: TaskSpec;
  private readonly taskId: string;
  private readonly admins: Redis[];
  private readonly copiers: OversizedKeyCopier[] = [];

  private constructor(
    o: { source: RedisEndpoint; target: RedisEndpoint; spec: TaskSpec; taskId: string },
    info: ServerInfo,
    targetInfo: ServerInfo,
    bulk: BulkLimit,
    routing: TargetRouting,
    admins: Redis[],
  ) {
    this.source = o.source;
    this.target = o.target;
    this.spec = o.spec;
    this.taskId = o.taskId;
    this.info = info;
    this.targetInfo = targetInfo;
    this.maxBulk = bulk.bytes;
    this.maxBulkAssumed = bulk.assumed;
    this.routing = routing;
    this.admins = admins;
    this.budget = processMemoryBudget(resolveMemoryBudget(o.spec.limits.memoryBudget));
    this.logical =
      o.spec.fullSync.crossVersion === 'logical' && olderRdb(info.versionNum, targetInfo.versionNum)
        ? {
            targetVersion: targetInfo.versionNum,
            maxCommandBytes: Math.min(this.budget.partBytes, Math.floor(this.maxBulk / 4)),
          }
        : undefined;
  }

  static async open(o: {
    source: RedisEndpoint;
    target: RedisEndpoint;
    spec: TaskSpec;
    taskId: string;
  }): Promise<UnitCopyContext> {
    const admins: Redis[] = [];
    try {
      const src = await connectAdmin(o.source);
      admins.push(src);
      const tgt = await connectAdmin(o.target);
      admins.push(tgt);
      return new UnitCopyContext(
        o,
        await serverInfo(src),
        await serverInfo(tgt),
        await protoMaxBulkLen(tgt),
        await openTargetRouting(o.target),
        admins,
      );
    } catch (e) {
      await Promise.all(admins.map((a) => a.quit().catch(() => a.disconnect())));
      throw e;
    }
  }

  /** Largest payload one RESTORE may carry. */
  get maxPayloadBytes(): number {
    return this.maxBulk - RESTORE_OVERHEAD;
  }

  /** Copies big keys of `unit` in parts; closed with the context. */
  oversizedCopier(unit: FullSyncUnit, progress?: ProgressSink, source = this.source): OversizedKeyCopier {
    const copier = new OversizedKeyCopier({
      source,
      target: this.target,
      routing: this.routing,
      unit,
      taskId: this.taskId,
      protoMaxBulkLen: this.maxBulk,
      sourceVersion: this.info.versionNum,
      ...(this.logical ? { targetVersion: this.logical.targetVersion } : {}),
      budget: this.budget,
      onKey: (key) =>
        progress?.log(
          this.logical
            ? `copying ${key} on its own with type commands (a stream, a big key, or one changed while read)`
            : `copying big key ${key} in parts`,
          { unit: unit.unitId },
        ),
    });
    this.copiers.push(copier);
    return copier;
  }

  /** copyUnit's options from the spec, for `unit`, without the per-run ones (from, deadline, callbacks). */
  copyOptions(
    unit: FullSyncUnit,
    progress?: ProgressSink,
  ): Omit<CopyUnitOptions, 'from' | 'deadline' | 'shouldStop' | 'onChunkApplied'> {
    const spec = this.spec;
    const copier = this.oversizedCopier(unit, progress);
    return {
      source: this.source,
      target: this.target,
      routing: this.routing,
      unit,
      keep: makeKeyFilter(spec.keyFilter),
      sourceVersion: this.info.versionNum,
      dbHasExpiringKeys: (this.info.keyspace[unit.sourceDb]?.expires ?? 0) > 0,
      maxPayloadBytes: this.maxPayloadBytes,
      ...(this.logical ? { logical: this.logical } : {}),
      copyInParts: (key) => copier.copy(key, 'after'),
      budget: this.budget,
      onProbeUnavailable: (reason) =>
        progress?.log(
          `warning: the source refuses MEMORY USAGE (${reason}), so sizes are unknown before DUMP and ` +
            'a value bigger than the memory budget is read whole: allow MEMORY USAGE for this user',
          { unit: unit.unitId },
        ),
      limiter: new RateLimiter({
        keysPerSecond: spec.throttle?.maxKeysPerSecond,
        bytesPerSecond: spec.throttle?.maxBytesPerSecond,
      }),
      scanCount: spec.fullSync.chunkKeys,
      maxInFlightBytes: spec.fullSync.maxInFlightBytes,
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.copiers.map((c) => c.close()));
    await Promise.all(this.admins.map((a) => a.quit().catch(() => a.disconnect())));
  }
}

import { makeKeyFilter } from '../commands/key-filter.ts';
import { DtsError } from '../errors.ts';
import { type RdbFullSyncResult, rdbFullSync } from '../fullsync/rdb-full-sync.ts';
import { RESUMES_FROM_CHECKPOINT } from '../fullsync/restore-writer.ts';
import { numericDbMap } from '../fullsync/unit-checkpoint.ts';
import { openApplier } from '../incremental/cluster-marker-applier.ts';
import type { ProgressSink } from '../progress/progress-reporter.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import type { ShardCheckpoint, TaskStore, Versioned } from '../state/task-store.ts';
import type { TaskSpec } from '../task/spec.ts';
import type { UnitCopyContext } from './unit-copy-context.ts';

/** A shard whose full sync is the RDB's and has not finished (or never started). */
export function needsRdbLoad(shard: ShardCheckpoint): boolean {
  return shard.rdb === 'pending' || shard.rdb === 'loading';
}

/**
 * At the start of a run: a shard left 'loading' was interrupted mid-snapshot. Its keys on the destination
 * are an unknown part of an older snapshot, and keys deleted on the source since then would survive a
 * new load, so every destination db the loads wrote is emptied, every shard's marker removed, and every
 * RDB shard taken again from the start (one shard's flush would empty the others' keys too). The
 * precheck saw those dbs empty (existingKeys block), so what is emptied is the task's own writing; with
 * existingKeys overwrite they held the user's keys, and the load is refused instead.
 */
export async function redoInterruptedRdbLoads(
  shards: Versioned<ShardCheckpoint>[],
  o: {
    spec: TaskSpec;
    taskId: string;
    store: TaskStore;
    copy: UnitCopyContext;
    markerDb: number;
    log: (m: string) => void;
  },
): Promise<Versioned<ShardCheckpoint>[]> {
  const interrupted = shards.filter((s) => s.value.rdb === 'loading');
  if (interrupted.length === 0) return shards;
  const names = interrupted.map((s) => s.value.shardId).join(', ');
  if (o.spec.existingKeys === 'overwrite') {
    throw new DtsError(
      'RDB_LOAD_INTERRUPTED',
      `the full sync from the RDB of shard ${names} was interrupted, and with --existing-keys overwrite the ` +
        'destination dbs also hold keys of their own, so they cannot be emptied to take the snapshot again',
      'empty the destination dbs yourself and run the task again, or start a new task with --full-sync-reader scan',
    );
  }
  const dbs = [...new Set(shards.flatMap((s) => s.value.rdbTargetDbs ?? []))].sort((a, b) => a - b);
  o.log(
    `the full sync from the RDB was interrupted (shard ${names}): emptying destination ${dbs.length === 1 ? 'db' : 'dbs'} ` +
      `${dbs.join(', ') || '(none written)'} and taking the snapshot again`,
  );
  for (const db of dbs) {
    for (const node of o.copy.routing.nodes) {
      const conn = await RawConnection.open(node, { db, clientName: 'redis-dts-rdb-redo' });
      try {
        await conn.call(['FLUSHDB']);
      } finally {
        await conn.close();
      }
    }
  }
  const redone: Versioned<ShardCheckpoint>[] = [];
  for (const s of shards) {
    const applier = await openApplier(o.copy.target, o.copy.routing, {
      taskId: o.taskId,
      shardId: s.value.shardId,
      markerDb: o.markerDb,
    });
    try {
      await applier.removeMarker();
    } finally {
      await applier.close();
    }
    const value: ShardCheckpoint = { ...s.value, rdb: 'pending', phase: 'rdb-pending', rdbTargetDbs: [] };
    delete value.rdbOversized;
    delete value.rdbPeakRssBytes;
    redone.push({ value, version: await o.store.putShard(o.taskId, value, s.version) });
  }
  return redone;
}

export interface RdbShardLoad {
  shard: Versioned<ShardCheckpoint>;
  /** Absent when the shard was loaded by an earlier run (its stream resumes by PSYNC). */
  loaded?: RdbFullSyncResult;
  oversized: { db: number; key: Buffer }[];
}

/**
 * One shard's full sync from its RDB, with its checkpoint kept in step: 'loading' (and each destination
 * db before its first key) before anything is written, then 'loaded' with the snapshot's replid and
 * offset as the shard's start, where the incremental sync continues on the held link.
 */
export async function loadShardRdb(
  shard: Versioned<ShardCheckpoint>,
  o: {
    spec: TaskSpec;
    taskId: string;
    store: TaskStore;
    source: RedisEndpoint;
    copy: UnitCopyContext;
    progress: ProgressSink;
    log: (m: string) => void;
  },
): Promise<RdbShardLoad> {
  if (!needsRdbLoad(shard.value)) {
    const oversized = (shard.value.rdbOversized ?? []).map((k) => ({
      db: k.db,
      key: Buffer.from(k.key, 'base64'),
    }));
    return { shard, oversized };
  }
  let current = shard;
  // One write at a time: the dbs' first keys arrive side by side, and each write needs the last version.
  let saving: Promise<unknown> = Promise.resolve();
  const save = (next: (value: ShardCheckpoint) => ShardCheckpoint): Promise<void> => {
    const run = saving.then(async () => {
      const value = next(current.value);
      if (value === current.value) return;
      current = { value, version: await o.store.putShard(o.taskId, value, current.version) };
    });
    saving = run.catch(() => undefined);
    return run;
  };
  await save((v) => ({
    ...v,
    rdb: 'loading',
    phase: 'rdb-loading',
    rdbTargetDbs: [],
    updatedAt: new Date().toISOString(),
  }));
  const { spec, copy } = o;
  o.log(
    "full sync: reading the source's RDB snapshot (PSYNC ? -1: the source forks once, as for a new replica)",
  );
  const result = await rdbFullSync({
    source: o.source,
    routing: copy.routing,
    keep: makeKeyFilter(spec.keyFilter),
    ...(spec.dbs ? { dbs: new Set(spec.dbs) } : {}),
    ...(spec.dbMap ? { dbMap: numericDbMap(spec.dbMap) } : {}),
    maxPayloadBytes: copy.maxPayloadBytes,
    // Held whole from the RDB, then as its RESTORE, up to the size the scan reader copies whole too;
    // a larger value is walked over and copied from the source in parts after the load.
    maxValueBytes: copy.budget.inPartsAbove,
    maxInFlightBytes: Math.ceil(
      (spec.fullSync.maxInFlightBytes ?? copy.budget.inFlightBytes) / copy.routing.nodes.length,
    ),
    destinationVersion: copy.targetInfo.redisVersion,
    onFirstWrite: (db) =>
      save((v) => {
        const written = v.rdbTargetDbs ?? [];
        return written.includes(db) ? v : { ...v, rdbTargetDbs: [...written, db].sort((a, b) => a - b) };
      }),
    progress: o.progress,
    label: current.value.node ? `rdb ${current.value.shardId}` : 'rdb',
  }).catch((e: unknown) => {
    throw partialLoad(e);
  });
  try {
    await save((v) => ({
      ...v,
      rdb: 'loaded',
      phase: 'rdb-loaded',
      replid: result.replid,
      startOffset: result.offset,
      appliedOffset: result.offset,
      rdbKeys: result.keys,
      rdbBytes: result.bytes,
      rdbOversized: result.oversized.map((k) => ({ db: k.db, key: k.key.toString('base64') })),
      rdbPeakRssBytes: process.resourceUsage().maxRSS * 1024,
      updatedAt: new Date().toISOString(),
    }));
  } catch (e) {
    await result.link.release();
    throw e;
  }
  const rate = result.seconds > 0 ? Math.round(result.keys / result.seconds) : result.keys;
  o.log(
    `full sync: ${result.keys} keys from the RDB (${(result.rdbBytes / 2 ** 20).toFixed(1)} MB, ${result.skipped} left out by the filters) ` +
      `in ${result.seconds.toFixed(1)} s (${rate} keys/s), snapshot at ${result.replid}:${result.offset}, RDB checksum ${result.checksum}` +
      (result.oversized.length > 0
        ? `; ${result.oversized.length} keys too big to hold whole follow, copied in parts`
        : ''),
  );
  return { shard: current, loaded: result, oversized: result.oversized };
}

/** A failed load leaves part of a snapshot on the destination: say so, and what a run again does. */
function partialLoad(e: unknown): unknown {
  if (!(e instanceof DtsError)) return e;
  return new DtsError(
    e.code,
    `${e.message} (the full sync from the RDB stopped part-way: the destination holds part of the snapshot)`,
    // The writer's fix may promise a resume from a checkpoint: an RDB load has none, it starts over.
    e.fix.includes(RESUMES_FROM_CHECKPOINT)
      ? e.fix.replace(RESUMES_FROM_CHECKPOINT, 'it empties the dbs it wrote and takes the snapshot again')
      : `${e.fix}; running the task again empties the dbs it wrote and takes the snapshot again`,
  );
}

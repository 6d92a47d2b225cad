import { targetDbFor } from '../commands/key-filter.ts';
import { DtsError, isDtsError } from '../errors.ts';
import { numericDbMap } from '../fullsync/unit-checkpoint.ts';
import type { ShardCheckpoint, TaskStore, UnitCheckpoint, Versioned } from '../state/task-store.ts';
import type { TaskSpec } from '../task/spec.ts';
import type { UnitCopyContext } from './unit-copy-context.ts';

/** Full syncs redone by one run before it gives up: a backlog lost again at once will be lost again. */
export const MAX_RESYNCS = 3;

/** The failure is a lost backlog and the spec asks to redo the full sync then. */
export function resyncWanted(e: unknown, spec: TaskSpec): e is DtsError {
  return isDtsError(e) && e.code === 'BACKLOG_LOST' && spec.incremental.onBacklogLost === 'resync';
}

/**
 * `incremental.onBacklogLost: resync`: the source's backlog no longer holds a shard's position, so the
 * changes since cannot be replayed and the full sync is taken again, through the RDB on the same link as
 * the stream that follows (it needs no backlog). Done exactly the way an interrupted RDB load is redone
 * (rdb-shard-load.ts): every shard is marked 'loading' with the destination dbs the task writes, so the
 * next step empties them (removing keys the source deleted meanwhile), removes the markers and loads
 * every shard's snapshot again. Emptying is what makes it exact; it is refused where the destination
 * dbs hold keys of their own (--existing-keys overwrite), and where no process holds the link (Lambda
 * windows).
 */
export async function markForResync(
  cause: DtsError,
  shards: Versioned<ShardCheckpoint>[],
  o: {
    spec: TaskSpec;
    taskId: string;
    store: TaskStore;
    units: UnitCheckpoint[];
    copy: UnitCopyContext;
    markerDb: number;
    log: (m: string) => void;
  },
): Promise<Versioned<ShardCheckpoint>[]> {
  const refuse = (why: string, fix: string) =>
    new DtsError(cause.code, `${cause.message}; incremental.onBacklogLost resync ${why}`, fix);
  if (o.spec.existingKeys === 'overwrite') {
    throw refuse(
      'would empty destination dbs that also hold keys of their own (--existing-keys overwrite), so it was not done',
      cause.fix,
    );
  }
  if (o.spec.incremental.mode === 'lambda') {
    throw refuse(
      'takes the snapshot in one process that holds the link, which Lambda windows are not',
      `use incremental.mode fargate for onBacklogLost resync; ${cause.fix}`,
    );
  }
  if (o.copy.logical) {
    throw refuse(
      "loads the source's RDB snapshot, whose payloads this destination (an older RDB version) refuses",
      `run the task again from the start (a fresh full sync writes keys with type commands); ${cause.fix}`,
    );
  }
  const dbs = await writtenDbs(shards, o);
  o.log(
    `${cause.message}: onBacklogLost is resync, so the full sync is taken again from the RDB ` +
      `(destination ${dbs.length === 1 ? 'db' : 'dbs'} ${dbs.join(', ')} emptied first), then the stream goes on`,
  );
  const marked: Versioned<ShardCheckpoint>[] = [];
  for (const s of shards) {
    const value: ShardCheckpoint = {
      ...s.value,
      rdb: 'loading',
      phase: 'rdb-loading',
      rdbTargetDbs: dbs,
      updatedAt: new Date().toISOString(),
    };
    marked.push({ value, version: await o.store.putShard(o.taskId, value, s.version) });
  }
  return marked;
}

/**
 * The destination dbs the task may have written: its full sync's (units or RDB loads), the marker's,
 * and those of the selected source dbs that hold keys now (a db first written during incremental sync).
 */
async function writtenDbs(
  shards: Versioned<ShardCheckpoint>[],
  o: { spec: TaskSpec; units: UnitCheckpoint[]; copy: UnitCopyContext; markerDb: number },
): Promise<number[]> {
  const map = numericDbMap(o.spec.dbMap);
  const selected = o.spec.dbs ? new Set(o.spec.dbs) : undefined;
  const dbs = new Set<number>([o.markerDb]);
  for (const u of o.units) dbs.add(u.targetDb);
  for (const s of shards) for (const db of s.value.rdbTargetDbs ?? []) dbs.add(db);
  for (const db of Object.keys(o.copy.info.keyspace).map(Number)) {
    if (!selected || selected.has(db)) dbs.add(targetDbFor(map, db));
  }
  return [...dbs].sort((a, b) => a - b);
}

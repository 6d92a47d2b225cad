import { lookupCommand } from '../commands/catalogue.ts';
import {
  type FilterContext,
  type FilterDecision,
  filterCommand,
  uniqueKeys,
} from '../commands/command-filter.ts';
import { locateArg } from '../commands/key-extraction.ts';
import { targetDbFor } from '../commands/key-filter.ts';
import { DtsError } from '../errors.ts';
import { parseInfo } from '../redis/admin-client.ts';
import { keySlot } from '../redis/cluster-slot.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import { propagatesRelativeExpiries } from '../redis/server-versions.ts';
import type { TargetRouting } from '../redis/target-routing.ts';
import { openApplier } from './cluster-marker-applier.ts';
import { DirtySet } from './dirty-set.ts';
import { ExpiryPlacer, LOOK_AHEAD_COMMANDS, relativeExpiryKeysAhead } from './expiry-placer.ts';
import { copyFunctions, isFunctionCommand } from './function-copier.ts';
import { HeartbeatWriter, isHeartbeat } from './heartbeat.ts';
import { keyspaceOnClusterShard, unsupported } from './incremental-errors.ts';
import { type BigKeyOptions, KeyRecopier } from './key-recopier.ts';
import { LagMeter, type LagSnapshot } from './lag-meter.ts';
import { ALL_NODES, type Applier, type ApplyCommand, type MarkerPosition } from './marker-applier.ts';
import { readFollowingMaster } from './recopy-following-master.ts';
import { SkipStamps } from './skip-stamps.ts';
import { splitBySlot } from './slot-split.ts';
import { StreamFeed, type StreamItem } from './stream-feed.ts';

export interface IncrementalSyncOptions {
  source: RedisEndpoint;
  target: RedisEndpoint;
  /** A cluster destination's masters: commands go to the node of their slot, each node with its marker. */
  routing?: TargetRouting;
  taskId: string;
  shardId: string;
  /** The source is one master of a cluster: re-copies read one slot per transaction. */
  clusterSource?: boolean;
  /** A cluster shard: where its master is now (after a failover). */
  resolveSource?: () => Promise<RedisEndpoint>;
  filter: FilterContext;
  /** Destination db of the marker and its skip hash (one the task writes anyway). */
  markerDb: number;
  /** Where the stream starts when the destination has no marker yet: the offset captured before the full sync. */
  start: { replid: string; offset: number };
  /** Largest stamp of the full sync's chunks (F): the stream up to it is collected, not applied. */
  catchUpBound: number;
  /** Source dbs the full sync copied: where a keyspace-wide change or an unknown db can reach. */
  syncedDbs: number[];
  /** Empties the destination db of a source db and copies that db again; resolves with its largest stamp. */
  resyncDb: (sourceDb: number) => Promise<number>;
  sourceVersion: number;
  /** Keys too big for the memory budget or one RESTORE: how re-copies read them (KeyRecopier). */
  bigKeys: BigKeyOptions;
  heartbeat?: { prefix: string; intervalMs: number; db: number };
  /** 'caught-up': end once everything written is applied and the source has been quiet for quietMs. */
  until: 'stopped' | 'caught-up';
  quietMs?: number;
  /** End (checkpointed) when Date.now() passes this: a Lambda window. */
  deadline?: number;
  shouldStop?: () => boolean;
  onProgress?: (p: IncrementalProgress) => void;
  log?: (message: string) => void;
  maxBatchBytes?: number;
  maxBatchCommands?: number;
  maxPendingBatches?: number;
}

export type IncrementalPhase = 'catch-up' | 're-copy' | 'incremental';

export interface IncrementalProgress extends LagSnapshot {
  phase: IncrementalPhase;
  sourceOffset: number | undefined;
  commandsApplied: number;
  commandsSkipped: number;
  keysRecopied: number;
  dbsResynced: number;
  reconnects: number;
}

export interface IncrementalOutcome {
  ended: 'stopped' | 'caught-up' | 'deadline';
  position: MarkerPosition;
  progress: IncrementalProgress;
}

const RECOPY_KEYS_PER_BATCH = 500;
const SOURCE_POLL_MS = 500;
const PROGRESS_MS = 1000;
const STOP_DRAIN_MS = 10_000;
const FLUSHDB = Buffer.from('FLUSHDB');
const DEL = Buffer.from('DEL');
const MOVE = Buffer.from('MOVE');

interface Pending {
  done: Promise<void>;
}

/**
 * Incremental sync of one source shard, exactly once (ARCHITECTURE.md, "Exactness"):
 *
 * - Without a marker on the destination, a catch-up first: the stream from the offset captured before
 *   the full sync up to the largest chunk stamp is read but not applied; its keys form the dirty set and
 *   its keyspace-wide commands mark whole dbs, which are emptied and copied again (raising the bound, and
 *   read on to it). The dirty keys are then re-copied in stamped transactions, each with its skip entries,
 *   and the first marker is set at the bound.
 * - Then the apply loop: commands in `MULTI … SET <marker> EXEC` batches (a source transaction never
 *   split), skipping commands a re-copy already holds; a command that cannot be replayed as is (a script,
 *   a mix of filtered keys, or one whose keys are partly ahead of it) has its written keys re-copied in the
 *   same batch.
 *
 * After a crash, a destination with a marker resumes from it and its skip hash; one without redoes the
 * catch-up, which is safe: re-copies write the source's current state, and nothing else was applied.
 */
export class IncrementalSync {
  private readonly o: IncrementalSyncOptions;
  private readonly stamps = new SkipStamps();
  private readonly lag = new LagMeter();
  private applier!: Applier;
  /** Set for a cluster destination: commands carry their slot and stream offset. */
  private cluster = false;
  private recopier!: KeyRecopier;
  private feed: StreamFeed | undefined;
  /** Where the source shard is read: its master, which a cluster failover moves. */
  private source: RedisEndpoint;
  private following: Promise<void> | undefined;
  private heartbeat: HeartbeatWriter | undefined;
  /** A pre-7.0 source: its relative expiries are made absolute (or their keys re-copied). */
  private readonly expiries: ExpiryPlacer | undefined;
  private sourceConn: RawConnection | undefined;
  private carry: StreamItem | undefined;
  private phase: IncrementalPhase = 'catch-up';

  // The stream as processed: the current db, the replid, and the end of the last whole command.
  private db: number | undefined;
  private replid: string;
  private processed: number;

  // The batch being built.
  private batch: ApplyCommand[] = [];
  private batchBytes = 0;
  private batchCommands = 0;
  private batchHeartbeats: number[] = [];
  private inTransaction = false;
  private flushedAt = -1;
  private readonly pending: Pending[] = [];
  private fatal: Error | undefined;
  private appliedOffset: number;
  /** The stream's FUNCTION commands up to here are in the libraries copied at the catch-up's end. */
  private functionsStamp = -1;

  private commandsApplied = 0;
  private commandsSkipped = 0;
  private keysRecopied = 0;
  private dbsResynced = 0;
  private lastDataAt = Date.now();
  private sourceOffset: { offset: number; at: number } | undefined;
  private timers: NodeJS.Timeout[] = [];
  private polling = false;
  private stopAt: { offset: number; by: number } | undefined;

  constructor(o: IncrementalSyncOptions) {
    this.o = o;
    this.source = o.source;
    this.replid = o.start.replid;
    this.processed = o.start.offset;
    this.appliedOffset = o.start.offset;
    if (propagatesRelativeExpiries(o.sourceVersion)) {
      this.expiries = new ExpiryPlacer(() => this.heartbeat?.clockOffset);
    }
  }

  async run(): Promise<IncrementalOutcome> {
    const o = this.o;
    try {
      this.cluster = o.routing?.topology !== undefined;
      this.applier = await openApplier(o.target, o.routing, o);
      this.recopier = this.makeRecopier();
      await this.startHeartbeat();
      this.timers.push(setInterval(() => this.pollSource(), SOURCE_POLL_MS));
      if (o.onProgress) this.timers.push(setInterval(() => o.onProgress!(this.progress()), PROGRESS_MS));
      for (const t of this.timers) t.unref();

      const marker = await this.applier.readPosition();
      if (marker) {
        this.stamps.load(await this.applier.readSkipEntries());
        this.replid = marker.replid;
        this.processed = marker.offset;
        this.appliedOffset = marker.offset;
        this.flushedAt = marker.offset;
        this.db = marker.db;
        o.log?.(
          `resuming incremental sync at ${marker.replid}:${marker.offset} (from the destination's marker)`,
        );
        if (this.applier.resumeByCatchUp) {
          // What follows the marker may be partly applied: copy its keys again instead of replaying them.
          const now = await this.readSourceOffset();
          if (now !== undefined && now > marker.offset) await this.catchUp(marker, now, 'resume');
        }
      } else {
        await this.catchUp(o.start, o.catchUpBound, 'full-sync');
      }
      this.phase = 'incremental';
      const ended = await this.applyLoop();
      await this.drain();
      const outcome = {
        ended,
        position: { replid: this.replid, offset: this.appliedOffset, db: this.db },
        progress: this.progress(),
      };
      o.onProgress?.(outcome.progress);
      return outcome;
    } finally {
      for (const t of this.timers) clearInterval(t);
      this.expiries?.close();
      await this.following;
      await this.feed?.close().catch(() => undefined);
      await this.heartbeat?.stop();
      await this.recopier?.close().catch(() => undefined);
      if (this.fatal) this.applier?.destroy();
      else await this.applier?.close().catch(() => undefined);
      this.sourceConn?.destroy();
    }
  }

  progress(): IncrementalProgress {
    return {
      ...this.lag.snapshot(),
      phase: this.phase,
      sourceOffset: this.sourceOffset?.offset,
      commandsApplied: this.commandsApplied,
      commandsSkipped: this.commandsSkipped,
      keysRecopied: this.keysRecopied,
      dbsResynced: this.dbsResynced,
      reconnects: this.feed?.reconnects ?? 0,
    };
  }

  // ---- catch-up --------------------------------------------------------------------------------------

  /**
   * `after`: the changes made during the full sync (no marker yet), or those after the marker of a
   * destination where they may be partly applied (the marker stays until the catch-up sets the next).
   */
  private async catchUp(
    from: { replid: string; offset: number },
    catchUpBound: number,
    after: 'full-sync' | 'resume',
  ): Promise<void> {
    const o = this.o;
    // A catch-up interrupted earlier may have left skip entries: they belong to re-copies that are redone.
    if (after === 'full-sync') await this.applier.removeMarker();
    this.feed = await this.openFeed(from);
    const dirty = new DirtySet();
    const serverWide: ApplyCommand[] = [];
    let bound = catchUpBound;
    const what = after === 'full-sync' ? 'made during the full sync' : 'after the marker';
    o.log?.(`catch-up: reading the changes ${what} (${bound - from.offset} bytes of stream)`);
    for (;;) {
      while (this.processed < bound) {
        const item = await this.next();
        if (item.end > bound) {
          this.carry = item;
          break;
        }
        this.collect(item, dirty, serverWide);
      }
      const dbs = dirty.takeDbs();
      if (dbs.length === 0) break;
      for (const db of dbs) {
        o.log?.(`catch-up: db ${db} changed as a whole (FLUSHDB, FLUSHALL or SWAPDB): copying it again`);
        bound = Math.max(bound, await o.resyncDb(db));
        this.dbsResynced++;
      }
    }

    this.phase = 're-copy';
    const byDb = dirty.takeKeys();
    let total = 0;
    for (const keys of byDb.values()) total += keys.length;
    o.log?.(
      `catch-up: re-copying ${total} keys written ${after === 'full-sync' ? 'during the full sync' : 'after the marker'}`,
    );
    for (const [db, dirtyKeys] of byDb) {
      for (const keys of await this.recopier.bigFirst(db, dirtyKeys)) {
        for (let i = 0; i < keys.length; i += RECOPY_KEYS_PER_BATCH) {
          const r = await this.recopy(db, keys.slice(i, i + RECOPY_KEYS_PER_BATCH));
          // Before any marker: these batches leave it alone, and a crash before the first marker redoes them.
          this.send(r, undefined, 0, []);
          await this.throttlePending();
          if (this.fatal) throw this.fatal;
        }
      }
    }
    await this.drain();
    // Its own connection: sharing the offset poller's, opened concurrently, leaked one (and kept the process alive).
    const conn = await RawConnection.open(this.source, { clientName: 'redis-dts-functions' });
    const fn = await copyFunctions(conn, {
      sourceVersion: o.sourceVersion,
      markerDb: this.applier.markerDb,
      log: o.log,
      cluster: this.cluster,
      replid: this.replid,
    }).finally(() => conn.destroy());
    if (fn) this.functionsStamp = fn.stampOffset;
    this.batch = fn ? [...fn.commands, ...serverWide.filter((c) => !isFunctionCommand(c.argv))] : serverWide;
    this.batchCommands = this.batch.length;
    this.flush(true);
    await this.drain();
  }

  /** A command up to the bound: not applied, but what it touched is copied again. */
  private collect(item: StreamItem, dirty: DirtySet, serverWide: ApplyCommand[]): void {
    this.advance(item);
    const hb = this.o.heartbeat;
    if (hb && isHeartbeat(item.argv, hb.prefix, this.o.taskId) !== undefined) {
      // Our own write tells the db when no SELECT has yet.
      this.db ??= hb.db;
      return;
    }
    const dbs = this.db === undefined ? this.unknownDbCandidates() : [this.db];
    for (const db of dbs) {
      const d = filterCommand({ db, argv: item.argv }, this.o.filter);
      switch (d.action) {
        case 'select':
          this.db = d.db;
          return;
        case 'apply':
          if (d.serverWide) {
            if (db === dbs[0]) {
              serverWide.push({ db: d.db, argv: d.argv, ...(this.cluster ? { slot: ALL_NODES } : {}) });
            }
            break;
          }
          for (const k of d.keys) dirty.addKey(db, k);
          for (const other of this.otherDb(item.argv, db)) for (const k of d.keys) dirty.addKey(other, k);
          break;
        case 'recopy':
          for (const k of d.keys) dirty.addKey(d.db, k);
          break;
        case 'keyspace':
          if (this.o.clusterSource) throw keyspaceOnClusterShard(this.o.shardId, d.what);
          for (const x of d.dbs === 'all' ? this.allDbs(dirty) : d.dbs) dirty.addDb(x);
          break;
        case 'error':
          throw unsupported(d.message);
        default:
          break;
      }
    }
  }

  /** MOVE/COPY with a db argument also change that db. */
  private otherDb(argv: Buffer[], db: number): number[] {
    const spec = lookupCommand(this.o.filter.catalogue, argv);
    if (!spec?.dbChange) return [];
    const at = locateArg(argv, spec.dbChange.arg);
    const n = at === undefined ? Number.NaN : Number(argv[at]!.toString('latin1'));
    return Number.isInteger(n) && n !== db ? [n] : [];
  }

  private allDbs(dirty: DirtySet): number[] {
    const dbs = new Set(this.o.syncedDbs);
    for (const db of dirty.keyDbs()) dbs.add(db);
    return [...dbs];
  }

  /**
   * Before the stream's first SELECT the db is unknown (a continued stream does not repeat it): a command
   * then counts for every db it could be in.
   */
  private unknownDbCandidates(): number[] {
    if (this.o.clusterSource) return [0];
    const dbs = new Set(this.o.syncedDbs);
    if (this.o.filter.selectedDbs) for (const db of this.o.filter.selectedDbs) dbs.add(db);
    else for (let db = 0; db < 16; db++) dbs.add(db);
    return [...dbs].sort((a, b) => a - b);
  }

  // ---- apply loop ------------------------------------------------------------------------------------

  private async applyLoop(): Promise<IncrementalOutcome['ended']> {
    const o = this.o;
    this.feed ??= await this.openFeed({ replid: this.replid, offset: this.processed });
    o.log?.('incremental sync: applying changes');
    for (;;) {
      if (this.fatal) throw this.fatal;
      if (o.shouldStop?.() && !this.stopAt) this.stopAt = await this.stopPoint();
      const ended =
        this.stopAt && this.stopReached(this.stopAt)
          ? 'stopped'
          : o.deadline !== undefined && Date.now() >= o.deadline
            ? 'deadline'
            : undefined;
      if (ended) {
        // Inside a source transaction nothing is flushed: the marker stays before it and a resume redoes it.
        this.flush(false);
        return ended;
      }
      const item = this.carry ?? this.feed.take();
      this.carry = undefined;
      if (!item) {
        this.flush(false);
        if (this.caughtUp()) return 'caught-up';
        await this.feed.wait(100);
        continue;
      }
      const work = this.handle(item);
      if (work) await work;
      if (
        this.batchBytes >= (o.maxBatchBytes ?? 256 * 1024) ||
        this.batchCommands >= (o.maxBatchCommands ?? 2000)
      ) {
        this.flush(false);
      }
      await this.throttlePending();
    }
  }

  /**
   * A stop applies what the source had written when it was asked (so a stop after the writers ended
   * leaves both sides equal for the Verify that follows), but waits at most STOP_DRAIN_MS for it.
   */
  private async stopPoint(): Promise<{ offset: number; by: number }> {
    const offset = await this.readSourceOffset().catch(() => undefined);
    this.o.log?.(
      offset === undefined
        ? 'stopping: the source offset is unknown, ending at once'
        : `stopping: applying the changes up to source offset ${offset} first`,
    );
    return { offset: offset ?? -1, by: Date.now() + STOP_DRAIN_MS };
  }

  private stopReached(at: { offset: number; by: number }): boolean {
    return (this.processed >= at.offset && !this.inTransaction) || Date.now() >= at.by;
  }

  private async throttlePending(): Promise<void> {
    const maxPending = this.o.maxPendingBatches ?? 8;
    while (this.pending.length >= maxPending) await this.pending[0]!.done;
  }

  /** One command of the apply loop; returns a promise only when it has to read the source (a re-copy). */
  private handle(item: StreamItem): Promise<void> | undefined {
    this.advance(item);
    const hb = this.o.heartbeat;
    if (hb) {
      const ms = isHeartbeat(item.argv, hb.prefix, this.o.taskId);
      if (ms !== undefined) {
        // Our own write tells the db when no SELECT has yet.
        this.db ??= hb.db;
        this.batchHeartbeats.push(ms);
        this.expiries?.observeHeartbeat(ms, item.at);
        return undefined;
      }
    }
    if (this.db === undefined) return this.handleUnknownDb(item);
    const d = filterCommand({ db: this.db, argv: item.argv }, this.o.filter);
    return this.decide(d, item, this.db);
  }

  private decide(d: FilterDecision, item: StreamItem, db: number): Promise<void> | undefined {
    switch (d.action) {
      case 'select':
        this.db = d.db;
        return undefined;
      case 'transaction':
        this.inTransaction = d.what === 'multi';
        return undefined;
      case 'skip':
        if (d.reason !== 'ping' && d.reason !== 'replconf') this.commandsSkipped++;
        return undefined;
      case 'apply': {
        // Past every re-copy's stamp (the usual case) nothing can be covered: no per-key lookups.
        if (d.serverWide && item.end <= this.functionsStamp && isFunctionCommand(d.argv)) return undefined;
        if (d.serverWide || d.keys.length === 0 || item.end > this.stamps.maxStamp) {
          return this.pushPlaced(d, item, db);
        }
        if (d.otherDb) return this.applyAcrossDbs(d, item, db);
        const behind = d.keys.filter((k) => !this.stamps.covers(db, k, item.end));
        if (behind.length === d.keys.length) return this.pushPlaced(d, item, db);
        this.lastDataAt = Date.now();
        if (behind.length === 0) {
          this.commandsSkipped++;
          return undefined;
        }
        // Some keys already hold this command's effect, others do not: copy the others' state.
        return this.recopyInto(db, behind);
      }
      case 'recopy': {
        this.lastDataAt = Date.now();
        const keys = d.keys.filter((k) => !this.stamps.covers(d.db, k, item.end));
        return keys.length > 0 ? this.recopyInto(d.db, keys) : undefined;
      }
      case 'keyspace':
        this.lastDataAt = Date.now();
        return this.keyspace(d, item);
      case 'error':
        throw unsupported(d.message);
    }
  }

  /**
   * MOVE/COPY … DB with a re-copy ahead of it in either db: replaying it would act on a state that already
   * holds its effect, so the keys it writes are copied again in both dbs (found by the property test).
   */
  private applyAcrossDbs(d: Extract<FilterDecision, { action: 'apply' }>, item: StreamItem, db: number) {
    const other = d.otherDb!;
    const covered = (x: number, keys: Buffer[]) => keys.some((k) => this.stamps.covers(x, k, item.end));
    if (!covered(db, d.keys) && !covered(other.db, other.writes)) return this.pushApplied(d, item, db);
    this.lastDataAt = Date.now();
    const here = other.writesHere ? this.recopyInto(db, other.writes) : Promise.resolve();
    return here.then(() => this.recopyInto(other.db, other.writes));
  }

  /**
   * No SELECT seen since the stream (re)started: the command may be in any synced db, so its keys are
   * re-copied in each (exact, if slower), until a SELECT or our heartbeat tells the db.
   */
  private async handleUnknownDb(item: StreamItem): Promise<void> {
    for (const db of this.unknownDbCandidates()) {
      const d = filterCommand({ db, argv: item.argv }, this.o.filter);
      if (d.action === 'select') {
        this.db = d.db;
        return;
      }
      if (d.action === 'transaction') {
        this.inTransaction = d.what === 'multi';
        return;
      }
      if (d.action === 'error') throw unsupported(d.message);
      if (d.action === 'keyspace') {
        throw new DtsError(
          'UNKNOWN_DB',
          `${d.what.toUpperCase()} arrived before the replication stream named its db, so its effect cannot be placed`,
          'run the task again with a fresh full sync (keep the heartbeat enabled: it tells the db early)',
        );
      }
      if (d.action === 'apply' && d.serverWide) {
        await this.pushApplied(d, item, db);
        return;
      }
      const keys = d.action === 'apply' ? d.keys : d.action === 'recopy' ? d.keys : [];
      const from = d.action === 'recopy' ? d.db : db;
      // MOVE/COPY … DB write in the db they name as well.
      if (d.action === 'apply' && d.otherDb) await this.recopyInto(d.otherDb.db, d.otherDb.writes);
      const behind = keys.filter((k) => !this.stamps.covers(from, k, item.end));
      if (behind.length === 0) continue;
      this.lastDataAt = Date.now();
      await this.recopyInto(from, behind);
    }
  }

  /**
   * FLUSHDB, FLUSHALL, SWAPDB. Replayed as is (or, for FLUSHALL with a db selection, as FLUSHDB of each
   * selected db); keys re-copied ahead of the command in the dbs it touches would lose that copy, so they
   * are copied again right after it, in the same batch.
   */
  private async keyspace(
    d: Extract<FilterDecision, { action: 'keyspace' }>,
    item: StreamItem,
  ): Promise<void> {
    if (this.o.clusterSource) throw keyspaceOnClusterShard(this.o.shardId, d.what);
    const touched = d.dbs === 'all' ? undefined : d.dbs;
    const ahead = this.stamps.ahead(item.end, touched);
    const everyNode = this.cluster ? { slot: ALL_NODES, end: item.end } : {};
    if (d.replayable) {
      await this.push({ db: d.db, argv: d.argv, ...everyNode });
    } else if (d.what === 'flushall' && d.dbs !== 'all') {
      for (const db of d.dbs) {
        await this.push({ db: targetDbFor(this.o.filter.dbMap, db), argv: [FLUSHDB], ...everyNode });
      }
    } else {
      throw new DtsError(
        'KEYSPACE_NOT_REPLAYABLE',
        `${d.what.toUpperCase()} on the source touches ${d.dbs === 'all' ? 'every db' : `dbs ${d.dbs.join(', ')}`}, ` +
          "which the task's db selection or mapping cannot reproduce on the destination",
        'run the task again with a fresh full sync (or select both dbs of a SWAPDB)',
      );
    }
    if (d.what === 'swapdb' && d.replayable) this.followSwap(d);
    if (ahead.length === 0) return;
    const keys = uniqueKeys(ahead.map((a) => a.key));
    const dbs = touched ?? [...new Set(ahead.map((a) => a.db))];
    for (const db of dbs) await this.recopyInto(db, keys);
  }

  /**
   * SWAPDB moves our own keys with the data. On the destination, the marker and skip hash are moved back
   * into markerDb in the same transaction (the batch's marker SET then overwrites the marker); on the
   * source, the heartbeat key is deleted from the db it went to.
   */
  private followSwap(d: Extract<FilterDecision, { action: 'keyspace' }>): void {
    const [ta, tb] = [Number(d.argv[1]!.toString('latin1')), Number(d.argv[2]!.toString('latin1'))];
    const markerDb = this.applier.markerDb;
    if (ta === markerDb || tb === markerDb) {
      const other = ta === markerDb ? tb : ta;
      for (const key of this.applier.ownKeys) {
        this.batch.push({ db: other, argv: [MOVE, key, Buffer.from(String(markerDb))] });
      }
    }
    const hb = this.o.heartbeat;
    if (hb && Array.isArray(d.dbs) && d.dbs.includes(hb.db)) {
      const other = d.dbs.find((db) => db !== hb.db);
      if (other !== undefined) void this.heartbeat?.removeFrom(other);
    }
  }

  /**
   * A command replayed as the filter gave it (its db argument rewritten through dbMap). On a cluster
   * destination it goes to the node of its slot; one whose keys span slots is split per slot where that
   * keeps its meaning, otherwise its keys are re-copied (never a CROSSSLOT error).
   */
  private pushApplied(
    d: Extract<FilterDecision, { action: 'apply' }>,
    item: StreamItem,
    db: number,
  ): Promise<void> | undefined {
    if (!this.cluster) return this.push({ db: d.db, argv: d.argv });
    const end = item.end;
    if (d.serverWide || d.keys.length === 0)
      return this.push({ db: d.db, argv: d.argv, slot: ALL_NODES, end });
    const slot = keySlot(d.keys[0]!);
    if (d.keys.every((k) => keySlot(k) === slot)) return this.push({ db: d.db, argv: d.argv, slot, end });
    const parts = splitBySlot(d.argv);
    if (!parts) {
      this.lastDataAt = Date.now();
      return this.recopyInto(db, uniqueKeys(d.keys));
    }
    for (const p of parts) this.push({ db: d.db, argv: p.argv, slot: p.slot, end });
    return undefined;
  }

  /** pushApplied, with a pre-7.0 source's relative expiry made absolute, or its keys re-copied. */
  private pushPlaced(
    d: Extract<FilterDecision, { action: 'apply' }>,
    item: StreamItem,
    db: number,
  ): Promise<void> | undefined {
    const placed = d.serverWide ? undefined : this.expiries?.place(d.argv, item.end, item.at);
    if (placed === undefined) return this.pushApplied(d, item, db);
    if (placed === 'recopy') {
      this.lastDataAt = Date.now();
      const ahead = relativeExpiryKeysAhead(this.feed?.peek(LOOK_AHEAD_COMMANDS) ?? [], db, this.o.filter);
      return this.recopyInto(db, uniqueKeys([...d.keys, ...ahead]));
    }
    // One key each: none needs the cross-slot handling that could return a promise.
    for (const argv of placed) this.pushApplied({ ...d, argv }, item, db);
    return undefined;
  }

  private push(c: ApplyCommand): undefined {
    this.batch.push(c);
    this.batchCommands++;
    for (const a of c.argv) this.batchBytes += a.length + 16;
    this.commandsApplied++;
    this.lastDataAt = Date.now();
    return undefined;
  }

  private async recopyInto(db: number, keys: Buffer[]): Promise<void> {
    const r = await this.recopy(db, keys);
    for (const c of r.commands) {
      this.batch.push(c);
      for (const a of c.argv) this.batchBytes += a.length + 16;
    }
  }

  private async recopy(db: number, keys: Buffer[]) {
    const follow = this.o.resolveSource ? () => this.followSource() : undefined;
    const r = await readFollowingMaster(() => this.recopier.read(db, keys), follow);
    if (r.stamp.replid !== this.replid && !(await this.continuesOurHistory(r.stamp.replid))) {
      throw new DtsError(
        'SOURCE_CHANGED',
        `the source's replication id changed from ${this.replid} to ${r.stamp.replid} while keys were re-copied ` +
          '(a failover or a restart of the source)',
        'run the task again: it resumes from the destination marker, or redoes the catch-up',
      );
    }
    for (const s of r.keyStamps) this.stamps.set(db, s.key, s.offset);
    this.keysRecopied += r.keys;
    return r;
  }

  /** Sends the batch with the marker at the last whole command (never inside a source transaction). */
  private flush(force: boolean): void {
    if (this.inTransaction) return;
    if (!force && this.batch.length === 0 && this.processed === this.flushedAt) return;
    if (this.stamps.expire(this.processed)) {
      this.batch.push({ db: this.o.markerDb, argv: [DEL, this.applier.skipKey] });
    }
    const position = { replid: this.replid, offset: this.processed, db: this.db };
    this.send({ commands: this.batch }, position, this.batchCommands, this.batchHeartbeats);
    this.flushedAt = this.processed;
    this.batch = [];
    this.batchBytes = 0;
    this.batchCommands = 0;
    this.batchHeartbeats = [];
  }

  private send(
    r: { commands: ApplyCommand[] },
    position: MarkerPosition | undefined,
    commands: number,
    heartbeats: number[],
  ): Promise<void> {
    const entry: Pending = { done: Promise.resolve() };
    entry.done = this.applier.apply(r.commands, position).then(
      () => {
        this.pending.splice(this.pending.indexOf(entry), 1);
        if (!position) return;
        this.appliedOffset = position.offset;
        this.lag.observeApplied(position.offset, commands);
        const now = Date.now();
        for (const ms of heartbeats) this.lag.observeHeartbeat(ms, now);
      },
      (e: Error) => {
        this.pending.splice(this.pending.indexOf(entry), 1);
        this.fatal ??= e;
      },
    );
    this.pending.push(entry);
    return entry.done;
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) await this.pending[0]!.done;
    if (this.fatal) throw this.fatal;
  }

  // ---- stream and source -----------------------------------------------------------------------------

  private makeRecopier(): KeyRecopier {
    const o = this.o;
    return new KeyRecopier({
      source: this.source,
      sourceVersion: o.sourceVersion,
      dbMap: o.filter.dbMap,
      ...o.bigKeys,
      markerDb: this.applier.markerDb,
      skipKey: this.applier.skipKey,
      clusterSource: o.clusterSource === true,
    });
  }

  private async startHeartbeat(): Promise<void> {
    const o = this.o;
    if (!o.heartbeat) return;
    this.heartbeat = new HeartbeatWriter({ onError: (e) => o.log?.(`heartbeat: ${e.message}`) });
    await this.heartbeat.start(this.source, { taskId: o.taskId, ...o.heartbeat });
  }

  /**
   * A cluster shard's master changed (a failover: our server reports itself a replica, or the link moved).
   * Heartbeats, re-copies and offset polls go to the new master from now on; the stream itself keeps
   * flowing from the demoted one (it relays the new master's history) or moves on its next reconnect.
   */
  private followSource(): Promise<void> {
    const resolve = this.o.resolveSource;
    if (!resolve) return Promise.resolve();
    if (this.following) return this.following;
    this.following = (async () => {
      const ep = await resolve();
      if (ep.host === this.source.host && ep.port === this.source.port) return;
      this.o.log?.(`the shard's master is now ${describeEndpoint(ep)} (a failover): following it`);
      this.source = ep;
      this.sourceConn?.destroy();
      this.sourceConn = undefined;
      const recopier = this.recopier;
      this.recopier = this.makeRecopier();
      void recopier.close().catch(() => undefined);
      // The old key is the same key on the new master (it replicated there): the new writer takes it over.
      await this.heartbeat?.stop();
      await this.startHeartbeat();
    })()
      .catch((e: Error) => this.o.log?.(`could not follow the shard's new master: ${e.message}`))
      .finally(() => {
        this.following = undefined;
      });
    return this.following;
  }

  /**
   * A re-copy read on a promoted master carries its new replid before the stream shows it: the stamp
   * still counts when that master continues our history (its replid2 is ours), as PSYNC2 does.
   */
  private async continuesOurHistory(replid: string): Promise<boolean> {
    if (!this.o.resolveSource) return false;
    this.sourceConn ??= await RawConnection.open(this.source, { clientName: 'redis-dts-offset' });
    const reply = await this.sourceConn.call(['INFO', 'replication']);
    const info = parseInfo(Buffer.isBuffer(reply) ? reply.toString('latin1') : String(reply));
    return info.master_replid === replid && info.master_replid2 === this.replid;
  }

  private async openFeed(from: { replid: string; offset: number }): Promise<StreamFeed> {
    return StreamFeed.open({
      source: this.source,
      replid: from.replid,
      offset: from.offset,
      stampArrival: this.expiries !== undefined,
      onPause: () => this.expiries?.notLive(),
      onReconnect: (attempt, cause) => {
        this.expiries?.notLive();
        this.o.log?.(`replication link lost (${cause.message}); reconnecting (attempt ${attempt})`);
        void this.followSource();
      },
      ...(this.o.resolveSource ? { resolveSource: this.o.resolveSource } : {}),
    });
  }

  private async next(): Promise<StreamItem> {
    if (this.carry) {
      const item = this.carry;
      this.carry = undefined;
      return item;
    }
    for (;;) {
      const item = this.feed!.take();
      if (item) return item;
      await this.feed!.wait(1000);
    }
  }

  private advance(item: StreamItem): void {
    if (item.replid !== this.replid) this.replid = item.replid;
    this.processed = item.end;
  }

  private caughtUp(): boolean {
    if (this.o.until !== 'caught-up' || this.stamps.size > 0 || this.pending.length > 0) return false;
    if (this.batch.length > 0 || this.inTransaction) return false;
    const quietMs = this.o.quietMs ?? 1000;
    const polled = this.sourceOffset;
    return (
      Date.now() - this.lastDataAt >= quietMs &&
      polled !== undefined &&
      polled.at > this.lastDataAt &&
      this.appliedOffset >= polled.offset
    );
  }

  private pollSource(): void {
    if (this.polling) return;
    this.polling = true;
    const at = Date.now();
    this.readSourceOffset()
      .then((offset) => {
        if (offset === undefined) return;
        this.sourceOffset = { offset, at };
        this.lag.observeSourceOffset(offset);
        this.expiries?.observeSourceOffset(offset, Date.now());
      })
      .catch(() => {
        // A dropped connection is reopened at the next poll; the stream itself reports a lost source.
        this.sourceConn?.destroy();
        this.sourceConn = undefined;
      })
      .finally(() => {
        this.polling = false;
      });
  }

  private async readSourceOffset(): Promise<number | undefined> {
    this.sourceConn ??= await RawConnection.open(this.source, { clientName: 'redis-dts-offset' });
    const reply = await this.sourceConn.call(['INFO', 'replication']);
    const info = parseInfo(Buffer.isBuffer(reply) ? reply.toString('latin1') : String(reply));
    if (info.role === 'slave') void this.followSource();
    const offset = Number(info.master_repl_offset);
    return Number.isSafeInteger(offset) ? offset : undefined;
  }
}

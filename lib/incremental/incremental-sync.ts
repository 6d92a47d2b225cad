import { targetDbFor } from '../commands/key-filter.ts';
import { DtsError } from '../errors.ts';
import { readClusterTopology } from '../redis/cluster-topology.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import { propagatesRelativeExpiries } from '../redis/server-versions.ts';
import { standaloneRouting } from '../redis/target-routing.ts';
import type { HeldLink } from '../replication/held-link.ts';
import { ApplyBatcher } from './apply-batcher.ts';
import { collectForCatchUp, type StreamScope } from './catch-up-collector.ts';
import { openApplier } from './cluster-marker-applier.ts';
import { CommandRouter } from './command-router.ts';
import { DirtySet } from './dirty-set.ts';
import { ExpiryPlacer } from './expiry-placer.ts';
import { copyFunctions, isFunctionCommand } from './function-copier.ts';
import { isHeartbeat } from './heartbeat.ts';
import type {
  IncrementalOutcome,
  IncrementalPhase,
  IncrementalProgress,
  IncrementalSyncOptions,
} from './incremental-types.ts';
import { KeyRecopier } from './key-recopier.ts';
import { LagMeter } from './lag-meter.ts';
import type { Applier, ApplyCommand } from './marker-applier.ts';
import { OlderTarget } from './older-target.ts';
import { recopyAroundMoves } from './recopy-around-moves.ts';
import { readFollowingMaster } from './recopy-following-master.ts';
import { SkipStamps } from './skip-stamps.ts';
import { shardFlush } from './slot-flush.ts';
import { SourceLink } from './source-link.ts';
import { isRestoreAsking, reshardedInCatchUp } from './source-slot-moves.ts';
import { StreamFeed, type StreamItem } from './stream-feed.ts';

const RECOPY_KEYS_PER_BATCH = 500;
const SOURCE_POLL_MS = 500;
const PROGRESS_MS = 1000;
const STOP_DRAIN_MS = 10_000;
const DEL = Buffer.from('DEL');

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
  private out!: ApplyBatcher;
  private link!: SourceLink;
  private router!: CommandRouter;
  /** Set for a cluster destination: commands carry their slot and stream offset. */
  private cluster = false;
  private feed: StreamFeed | undefined;
  /** A pre-7.0 source: its relative expiries are made absolute (or their keys re-copied). */
  private readonly expiries: ExpiryPlacer | undefined;
  private carry: StreamItem | undefined;
  private phase: IncrementalPhase = 'catch-up';

  // The stream as processed: the replid and the end of the last whole command (the db: router.db).
  private replid: string;
  private processed: number;
  /** End of the last command whose handling finished (its commands are in the batch, or it needed none). */
  private handled = -1;
  /** Another shard waits for this one's batch (a source slot moving between them). */
  private flushWanted = false;

  private keysRecopied = 0;
  private dbsResynced = 0;
  private timers: NodeJS.Timeout[] = [];
  private stopAt: { offset: number; by: number } | undefined;

  constructor(o: IncrementalSyncOptions) {
    this.o = o;
    this.replid = o.start.replid;
    this.processed = o.start.offset;
    if (propagatesRelativeExpiries(o.sourceVersion)) {
      this.expiries = new ExpiryPlacer(() => this.link?.heartbeat?.clockOffset);
    }
  }

  async run(): Promise<IncrementalOutcome> {
    const o = this.o;
    try {
      this.cluster = o.routing?.topology !== undefined;
      this.applier = await openApplier(o.target, o.routing, o);
      this.out = new ApplyBatcher(this.applier, this.lag, o.start.offset);
      this.link = new SourceLink({
        source: o.source,
        taskId: o.taskId,
        resolveSource: o.resolveSource,
        heartbeat: o.heartbeat,
        makeRecopier: (source) => this.makeRecopier(source),
        log: o.log,
      });
      this.router = new CommandRouter({
        scope: this.scope(),
        taskId: o.taskId,
        heartbeat: o.heartbeat,
        stamps: this.stamps,
        out: this.out,
        applier: this.applier,
        expiries: this.expiries,
        heartbeatWriter: () => this.link.heartbeat,
        peek: (n) => this.feed?.peek(n) ?? [],
        recopy: (db, keys) => this.recopy(db, keys),
        ...(o.targetVersion !== undefined && o.targetVersion > 0 && o.targetVersion < o.sourceVersion
          ? {
              olderTarget: new OlderTarget({
                targetVersion: o.targetVersion,
                logical: o.bigKeys.logical !== undefined,
              }),
            }
          : {}),
        ...(o.clusterSource
          ? {
              ...(o.slotMoves ? { moves: o.slotMoves } : {}),
              shardFlush: shardFlush({
                shardId: o.shardId,
                sourceNodes: () => [this.link.endpoint, o.source],
                routing: o.routing ?? standaloneRouting(o.target),
                keep: o.filter.keep,
              }),
            }
          : {}),
        ...(o.log ? { log: o.log } : {}),
      });
      o.slotMoves?.attach({
        shardId: o.shardId,
        endpoint: () => this.link.endpoint,
        taken: () => this.processed,
        settled: () => this.settled(),
        requestFlush: () => {
          this.flushWanted = true;
        },
        readOffset: () => this.link.readOffset(),
        readTopology: () => readClusterTopology(this.link.endpoint),
      });
      await this.link.startHeartbeat();
      this.timers.push(setInterval(() => this.pollSource(), SOURCE_POLL_MS));
      if (o.onProgress) this.timers.push(setInterval(() => o.onProgress!(this.progress()), PROGRESS_MS));
      for (const t of this.timers) t.unref();

      const marker = await this.applier.readPosition();
      if (marker) {
        this.stamps.load(await this.applier.readSkipEntries());
        this.replid = marker.replid;
        this.processed = marker.offset;
        this.out.resumeAt(marker.offset);
        this.router.db = marker.db;
        o.log?.(
          `resuming incremental sync at ${marker.replid}:${marker.offset} (from the destination's marker)`,
        );
        if (this.applier.resumeByCatchUp) {
          // What follows the marker may be partly applied: copy its keys again instead of replaying them.
          const now = await this.link.readOffset();
          if (now !== undefined && now > marker.offset) await this.catchUp(marker, now, 'resume');
        }
      } else {
        await this.catchUp(o.start, o.catchUpBound, 'full-sync');
      }
      this.phase = 'incremental';
      const ended = await this.applyLoop();
      await this.out.drain();
      const outcome = {
        ended,
        position: { replid: this.replid, offset: this.out.appliedOffset, db: this.router.db },
        progress: this.progress(),
      };
      o.onProgress?.(outcome.progress);
      return outcome;
    } finally {
      o.slotMoves?.detach(o.shardId);
      for (const t of this.timers) clearInterval(t);
      this.expiries?.close();
      await this.link?.settle();
      await this.feed?.close().catch(() => undefined);
      // Not taken when the destination already had a marker (the stream resumed there instead).
      await o.heldLink?.release().catch(() => undefined);
      await this.link?.close();
      if (this.out?.fatal) this.applier?.destroy();
      else await this.applier?.close().catch(() => undefined);
    }
  }

  progress(): IncrementalProgress {
    return {
      ...this.lag.snapshot(),
      phase: this.phase,
      sourceOffset: this.link?.lastPolled?.offset,
      commandsApplied: this.router?.commandsApplied ?? 0,
      commandsSkipped: this.router?.commandsSkipped ?? 0,
      keysRecopied: this.keysRecopied,
      dbsResynced: this.dbsResynced,
      reconnects: this.feed?.reconnects ?? 0,
    };
  }

  /**
   * The stream offset up to which the destination holds this shard's commands: the last handled command
   * when nothing is waiting to be sent or acknowledged, else the last acknowledged batch's marker.
   */
  private settled(): number {
    if (this.phase !== 'incremental') return -1;
    if (this.out.isEmpty && this.out.unacknowledged === 0) return this.handled;
    return Math.min(this.handled, this.out.appliedOffset);
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
    this.feed = await this.openFeed(from, o.heldLink);
    const dirty = new DirtySet();
    for (const d of o.dirtyKeys ?? []) dirty.addKey(d.db, d.key);
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
    const moves = o.slotMoves;
    for (const keys of moves ? byDb.values() : []) {
      if (keys.some((k) => moves!.ownerOf(k) !== o.shardId)) throw reshardedInCatchUp(o.shardId);
    }
    let total = 0;
    for (const keys of byDb.values()) total += keys.length;
    o.log?.(
      `catch-up: re-copying ${total} keys written ${after === 'full-sync' ? 'during the full sync' : 'after the marker'}`,
    );
    for (const [db, dirtyKeys] of byDb) {
      for (const keys of await this.link.recopier.bigFirst(db, dirtyKeys)) {
        for (let i = 0; i < keys.length; i += RECOPY_KEYS_PER_BATCH) {
          const r = await this.recopy(db, keys.slice(i, i + RECOPY_KEYS_PER_BATCH));
          // Before any marker: these batches leave it alone, and a crash before the first marker redoes them.
          this.out.sendUnmarked(r.commands);
          await this.throttlePending();
          if (this.out.fatal) throw this.out.fatal;
        }
      }
    }
    await this.out.drain();
    // Its own connection: sharing the offset poller's, opened concurrently, leaked one (and kept the process alive).
    const conn = await RawConnection.open(this.link.endpoint, { clientName: 'redis-dts-functions' });
    const fn = await copyFunctions(conn, {
      sourceVersion: o.sourceVersion,
      ...(o.targetVersion !== undefined ? { targetVersion: o.targetVersion } : {}),
      markerDb: this.applier.markerDb,
      log: o.log,
      cluster: this.cluster,
      replid: this.replid,
    }).finally(() => conn.destroy());
    if (fn) this.router.functionsStamp = fn.stampOffset;
    const replayed = fn
      ? [...fn.commands, ...serverWide.filter((c) => !isFunctionCommand(c.argv))]
      : serverWide;
    for (const c of replayed) this.out.add(c, true);
    this.flush(true);
    await this.out.drain();
  }

  /** A command up to the bound: not applied, but what it touched is copied again. */
  private collect(item: StreamItem, dirty: DirtySet, serverWide: ApplyCommand[]): void {
    this.advance(item);
    const hb = this.o.heartbeat;
    if (hb && isHeartbeat(item.argv, hb.prefix, this.o.taskId) !== undefined) {
      // Our own write tells the db when no SELECT has yet.
      this.router.db ??= hb.db;
      return;
    }
    if (this.o.slotMoves && isRestoreAsking(item.argv)) throw reshardedInCatchUp(this.o.shardId);
    this.router.db = collectForCatchUp(this.scope(), this.router.db, item.argv, dirty, serverWide);
  }

  private scope(): StreamScope {
    const o = this.o;
    return {
      filter: o.filter,
      syncedDbs: o.syncedDbs,
      clusterSource: o.clusterSource,
      shardId: o.shardId,
      cluster: this.cluster,
    };
  }

  // ---- apply loop ------------------------------------------------------------------------------------

  private async applyLoop(): Promise<IncrementalOutcome['ended']> {
    const o = this.o;
    this.feed ??= await this.openFeed({ replid: this.replid, offset: this.processed });
    this.handled = this.processed;
    o.log?.('incremental sync: applying changes');
    for (;;) {
      if (this.out.fatal) throw this.out.fatal;
      if (o.slotMoves?.fatal) throw o.slotMoves.fatal;
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
      this.advance(item);
      const work = this.router.handle(item);
      if (work) await work;
      this.handled = item.end;
      if (this.flushWanted || this.out.isFull(o.maxBatchBytes ?? 256 * 1024, o.maxBatchCommands ?? 2000)) {
        this.flushWanted = false;
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
    const offset = await this.link.readOffset().catch(() => undefined);
    this.o.log?.(
      offset === undefined
        ? 'stopping: the source offset is unknown, ending at once'
        : `stopping: applying the changes up to source offset ${offset} first`,
    );
    return { offset: offset ?? -1, by: Date.now() + STOP_DRAIN_MS };
  }

  private stopReached(at: { offset: number; by: number }): boolean {
    return (this.processed >= at.offset && !this.router.inTransaction) || Date.now() >= at.by;
  }

  private async throttlePending(): Promise<void> {
    await this.out.throttle(this.o.maxPendingBatches ?? 8);
  }

  private async recopy(db: number, keys: Buffer[]): Promise<{ commands: ApplyCommand[] }> {
    const moves = this.o.slotMoves;
    const follow = this.o.resolveSource ? () => this.link.follow() : undefined;
    if (!moves) return { commands: keys.length > 0 ? await this.recopyRead(db, keys, follow) : [] };
    const read = (part: Buffer[], following: boolean) =>
      this.recopyRead(db, part, following ? follow : undefined);
    const targetDb = targetDbFor(this.o.filter.dbMap, db);
    const deleted = (gone: Buffer[]) => gone.map((k) => ({ db: targetDb, argv: [DEL, k] }));
    return { commands: await recopyAroundMoves(moves, this.o.shardId, keys, read, deleted) };
  }

  private async recopyRead(
    db: number,
    keys: Buffer[],
    follow: (() => Promise<void>) | undefined,
  ): Promise<ApplyCommand[]> {
    const r = await readFollowingMaster(() => this.link.recopier.read(db, keys), follow);
    if (r.stamp.replid !== this.replid && !(await this.link.continuesHistory(r.stamp.replid, this.replid))) {
      throw new DtsError(
        'SOURCE_CHANGED',
        `the source's replication id changed from ${this.replid} to ${r.stamp.replid} while keys were re-copied ` +
          '(a failover or a restart of the source)',
        'run the task again: it resumes from the destination marker, or redoes the catch-up',
      );
    }
    for (const s of r.keyStamps) this.stamps.set(db, s.key, s.offset);
    this.keysRecopied += r.keys;
    return r.commands;
  }

  /** Sends the batch with the marker at the last whole command (never inside a source transaction). */
  private flush(force: boolean): void {
    if (this.router.inTransaction) return;
    if (!force && this.out.isIdleAt(this.processed)) return;
    if (this.stamps.expire(this.processed)) {
      this.out.add({ db: this.o.markerDb, argv: [DEL, this.applier.skipKey] }, false);
    }
    this.out.flush({ replid: this.replid, offset: this.processed, db: this.router.db });
  }

  // ---- stream and source -----------------------------------------------------------------------------

  private makeRecopier(source: RedisEndpoint): KeyRecopier {
    const o = this.o;
    return new KeyRecopier({
      source,
      sourceVersion: o.sourceVersion,
      dbMap: o.filter.dbMap,
      ...o.bigKeys,
      markerDb: this.applier.markerDb,
      skipKey: this.applier.skipKey,
      clusterSource: o.clusterSource === true,
    });
  }

  private async openFeed(from: { replid: string; offset: number }, adopt?: HeldLink): Promise<StreamFeed> {
    return StreamFeed.open({
      ...(adopt ? { adopt } : {}),
      source: this.link.endpoint,
      replid: from.replid,
      offset: from.offset,
      stampArrival: this.expiries !== undefined,
      onPause: () => this.expiries?.notLive(),
      onReconnect: (attempt, cause) => {
        this.expiries?.notLive();
        this.o.log?.(`replication link lost (${cause.message}); reconnecting (attempt ${attempt})`);
        void this.link.follow();
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
    return this.o.until === 'caught-up' && this.isDrained(this.o.quietMs ?? 1000);
  }

  /**
   * Everything the source wrote is applied and acknowledged, and it has written nothing (but the
   * heartbeat) for quietMs: where `until: caught-up` ends, and what a cut-over waits for.
   */
  isDrained(quietMs: number): boolean {
    if (this.phase !== 'incremental' || !this.router || !this.out || !this.link) return false;
    if (this.stamps.size > 0 || this.out.unacknowledged > 0) return false;
    if (!this.out.isEmpty || this.router.inTransaction) return false;
    const polled = this.link.lastPolled;
    return (
      Date.now() - this.router.lastDataAt >= quietMs &&
      polled !== undefined &&
      polled.at > this.router.lastDataAt &&
      this.out.appliedOffset >= polled.offset
    );
  }

  private pollSource(): void {
    this.link.poll((offset) => {
      this.lag.observeSourceOffset(offset);
      this.expiries?.observeSourceOffset(offset, Date.now());
    });
  }
}

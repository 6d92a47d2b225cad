import { type FilterDecision, filterCommand, uniqueKeys } from '../commands/command-filter.ts';
import { targetDbFor } from '../commands/key-filter.ts';
import { DtsError } from '../errors.ts';
import { keySlot } from '../redis/cluster-slot.ts';
import type { ApplyBatcher } from './apply-batcher.ts';
import { dbsBeforeSelect, type StreamScope } from './catch-up-collector.ts';
import { type ExpiryPlacer, LOOK_AHEAD_COMMANDS, relativeExpiryKeysAhead } from './expiry-placer.ts';
import { isFunctionCommand } from './function-copier.ts';
import { type HeartbeatWriter, isHeartbeat } from './heartbeat.ts';
import { keyspaceOnClusterShard, unsupported } from './incremental-errors.ts';
import { ALL_NODES, type Applier, type ApplyCommand } from './marker-applier.ts';
import type { OlderTarget } from './older-target.ts';
import type { SkipStamps } from './skip-stamps.ts';
import type { ShardFlush } from './slot-flush.ts';
import { splitBySlot } from './slot-split.ts';
import type { GateResult, SourceSlotMoves } from './source-slot-moves.ts';
import type { StreamItem } from './stream-feed.ts';

const FLUSHDB = Buffer.from('FLUSHDB');
const MOVE = Buffer.from('MOVE');

export interface CommandRouterOptions {
  scope: StreamScope;
  taskId: string;
  heartbeat?: { prefix: string; db: number };
  stamps: SkipStamps;
  out: ApplyBatcher;
  applier: Applier;
  /** A pre-7.0 source: its relative expiries are made absolute (or their keys re-copied). */
  expiries: ExpiryPlacer | undefined;
  heartbeatWriter: () => HeartbeatWriter | undefined;
  /** The commands that follow in the stream, not taken yet. */
  peek: (n: number) => readonly StreamItem[];
  /** Copies keys again at a stamp (recording their skip entries); the commands that write the copy. */
  recopy: (db: number, keys: Buffer[]) => Promise<{ commands: ApplyCommand[] }>;
  /** The destination is older than the source: commands it lacks are rewritten or their keys re-copied. */
  olderTarget?: OlderTarget;
  /** A cluster source shard: empties its slots on the destination (FLUSHDB/FLUSHALL on its master). */
  shardFlush?: ShardFlush;
  /** A cluster source: slots moving between its masters (source-slot-moves.ts). */
  moves?: SourceSlotMoves;
  log?: (message: string) => void;
}

/**
 * The apply loop's decisions, one stream command at a time: replay it as is (routed to its slot's node on
 * a cluster destination, its relative expiry made absolute for a pre-7.0 source), skip it when a re-copy
 * already holds its effect, or copy its keys again in the same batch when it cannot be replayed here.
 * It also keeps the stream's db and whether a source transaction is open.
 */
export class CommandRouter {
  private readonly c: CommandRouterOptions;
  /** The stream's current db (undefined until a SELECT or our heartbeat names it). */
  db: number | undefined;
  inTransaction = false;
  /** The stream's FUNCTION commands up to here are in the libraries copied at the catch-up's end. */
  functionsStamp = -1;
  commandsApplied = 0;
  commandsSkipped = 0;
  /** When the stream last carried data (not our heartbeats): how a quiet source is told. */
  lastDataAt = Date.now();

  constructor(c: CommandRouterOptions) {
    this.c = c;
  }

  /** One command of the apply loop; returns a promise only when it has to read the source (a re-copy). */
  handle(item: StreamItem): Promise<void> | undefined {
    const hb = this.c.heartbeat;
    if (hb) {
      const ms = isHeartbeat(item.argv, hb.prefix, this.c.taskId);
      if (ms !== undefined) {
        // Our own write tells the db when no SELECT has yet.
        this.db ??= hb.db;
        this.c.out.heartbeat(ms);
        this.c.expiries?.observeHeartbeat(ms, item.at);
        return undefined;
      }
    }
    if (this.db === undefined) return this.handleUnknownDb(item);
    const d = filterCommand({ db: this.db, argv: item.argv }, this.c.scope.filter);
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
        const moves = this.c.moves;
        if (moves && !d.serverWide && d.keys.length > 0) {
          const g = moves.gate(this.c.scope.shardId, d.argv, d.keys, item.end);
          if (g) return this.gated(g, d, item, db);
        }
        return this.decideApply(d, item, db);
      }
      case 'recopy': {
        this.lastDataAt = Date.now();
        const g = this.c.moves?.gate(this.c.scope.shardId, item.argv, d.keys, item.end);
        if (g) {
          return (g.wait ?? Promise.resolve()).then(() => {
            const kept = d.keys.filter((k) => !g.drop.includes(k));
            return this.decideRecopy({ ...d, keys: kept }, item);
          });
        }
        return this.decideRecopy(d, item);
      }
      case 'keyspace':
        this.lastDataAt = Date.now();
        return this.keyspace(d, item);
      case 'error':
        throw unsupported(d.message);
    }
  }

  /**
   * A command on keys of a source slot in flight between masters: the keys another shard now holds are
   * dropped (a DEL loses them; any other command has its remaining keys re-copied), after waiting for the
   * previous owner's commands on the others.
   */
  private async gated(
    g: GateResult,
    d: Extract<FilterDecision, { action: 'apply' }>,
    item: StreamItem,
    db: number,
  ): Promise<void> {
    if (g.wait) await g.wait;
    if (g.argv) d = { ...d, argv: g.argv };
    if (g.drop.length === 0) return this.decideApply(d, item, db);
    this.lastDataAt = Date.now();
    const kept = d.keys.filter((k) => !g.drop.includes(k));
    if (kept.length === 0) {
      this.commandsSkipped++;
      return;
    }
    if (isDelete(d.argv))
      return this.decideApply({ ...d, argv: [d.argv[0]!, ...kept], keys: kept }, item, db);
    return this.recopyInto(db, kept);
  }

  private decideRecopy(d: Extract<FilterDecision, { action: 'recopy' }>, item: StreamItem) {
    const keys = d.keys.filter((k) => !this.c.stamps.covers(d.db, k, item.end));
    return keys.length > 0 ? this.recopyInto(d.db, keys) : undefined;
  }

  private decideApply(
    d: Extract<FilterDecision, { action: 'apply' }>,
    item: StreamItem,
    db: number,
  ): Promise<void> | undefined {
    // Past every re-copy's stamp (the usual case) nothing can be covered: no per-key lookups.
    if (d.serverWide && item.end <= this.functionsStamp && isFunctionCommand(d.argv)) return undefined;
    if (d.serverWide || d.keys.length === 0 || item.end > this.c.stamps.maxStamp) {
      return this.pushPlaced(d, item, db);
    }
    if (d.otherDb) return this.applyAcrossDbs(d, item, db);
    const behind = d.keys.filter((k) => !this.c.stamps.covers(db, k, item.end));
    if (behind.length === d.keys.length) return this.pushPlaced(d, item, db);
    this.lastDataAt = Date.now();
    if (behind.length === 0) {
      this.commandsSkipped++;
      return undefined;
    }
    // Some keys already hold this command's effect, others do not: copy the others' state.
    return this.recopyInto(db, behind);
  }

  /**
   * MOVE/COPY … DB with a re-copy ahead of it in either db: replaying it would act on a state that already
   * holds its effect, so the keys it writes are copied again in both dbs (found by the property test).
   */
  private applyAcrossDbs(d: Extract<FilterDecision, { action: 'apply' }>, item: StreamItem, db: number) {
    const other = d.otherDb!;
    const covered = (x: number, keys: Buffer[]) => keys.some((k) => this.c.stamps.covers(x, k, item.end));
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
    for (const db of dbsBeforeSelect(this.c.scope)) {
      const d = filterCommand({ db, argv: item.argv }, this.c.scope.filter);
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
        // A cluster has db 0 only: the db is known even before the stream names it.
        if (this.c.scope.clusterSource) {
          this.db = db;
          return this.keyspace(d, item);
        }
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
      const behind = keys.filter((k) => !this.c.stamps.covers(from, k, item.end));
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
    if (this.c.scope.clusterSource) return this.flushShard(d, item);
    const touched = d.dbs === 'all' ? undefined : d.dbs;
    const ahead = this.c.stamps.ahead(item.end, touched);
    const everyNode = this.c.scope.cluster ? { slot: ALL_NODES, end: item.end } : {};
    if (d.replayable) {
      await this.push({ db: d.db, argv: d.argv, ...everyNode });
    } else if (d.what === 'flushall' && d.dbs !== 'all') {
      for (const db of d.dbs) {
        await this.push({ db: targetDbFor(this.c.scope.filter.dbMap, db), argv: [FLUSHDB], ...everyNode });
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
   * FLUSHDB/FLUSHALL on a master of a cluster source removed the keys of that master's slots and nothing
   * else: on the destination the same slots are emptied (slot-flush.ts), never the whole db, which the
   * other shards' streams keep writing. Order within this stream: everything before the flush is applied
   * first (a batch whose marker is the flush's start offset, drained), then the slots are emptied, and
   * only then does the stream go on, so the marker passes the flush only once the emptying is done; a
   * crash in between resumes before the flush and empties again (idempotent). Other shards need no order
   * against it: every key they write is in one of their own slots, which the emptying does not touch.
   */
  private async flushShard(
    d: Extract<FilterDecision, { action: 'keyspace' }>,
    item: StreamItem,
  ): Promise<void> {
    // A cluster refuses SWAPDB; a flush that does not reach db 0 (the only one) leaves nothing to do.
    if (d.what === 'swapdb' || !this.c.shardFlush) throw keyspaceOnClusterShard(this.c.scope.shardId, d.what);
    if (d.dbs !== 'all' && !d.dbs.includes(0)) {
      this.commandsSkipped++;
      return;
    }
    const ahead = this.c.stamps.ahead(item.end, [0]);
    this.c.out.flush({ replid: item.replid, offset: item.end - commandBytes(item.argv), db: this.db });
    await this.c.out.drain();
    const db = targetDbFor(this.c.scope.filter.dbMap, 0);
    const r = await this.c.shardFlush(db);
    this.c.log?.(
      `${d.what.toUpperCase()} on the source: removed ${r.removed} keys of the shard's ${r.slots} slots ` +
        `from destination db ${db}`,
    );
    this.commandsApplied++;
    this.lastDataAt = Date.now();
    // Keys re-copied ahead of the flush hold a state written after it, which the emptying just removed.
    if (ahead.length > 0) await this.recopyInto(0, uniqueKeys(ahead.map((a) => a.key)));
  }

  /**
   * SWAPDB moves our own keys with the data. On the destination, the marker and skip hash are moved back
   * into markerDb in the same transaction (the batch's marker SET then overwrites the marker); on the
   * source, the heartbeat key is deleted from the db it went to.
   */
  private followSwap(d: Extract<FilterDecision, { action: 'keyspace' }>): void {
    const [ta, tb] = [Number(d.argv[1]!.toString('latin1')), Number(d.argv[2]!.toString('latin1'))];
    const markerDb = this.c.applier.markerDb;
    if (ta === markerDb || tb === markerDb) {
      const other = ta === markerDb ? tb : ta;
      for (const key of this.c.applier.ownKeys) {
        this.c.out.add({ db: other, argv: [MOVE, key, Buffer.from(String(markerDb))] }, false);
      }
    }
    const hb = this.c.heartbeat;
    if (hb && Array.isArray(d.dbs) && d.dbs.includes(hb.db)) {
      const other = d.dbs.find((db) => db !== hb.db);
      if (other !== undefined) void this.c.heartbeatWriter()?.removeFrom(other);
    }
  }

  /**
   * pushRouted, after an older destination's adaptation (older-target.ts): the command as it is, what
   * it is rewritten into, or its keys copied again (in the other db too for COPY … DB).
   */
  private pushApplied(
    d: Extract<FilterDecision, { action: 'apply' }>,
    item: StreamItem,
    db: number,
  ): Promise<void> | undefined {
    const older = this.c.olderTarget?.adapt(d.argv, d.keys.length);
    if (older === undefined) return this.pushRouted(d, item, db);
    this.lastDataAt = Date.now();
    if (older === 'recopy') {
      const here = this.recopyInto(db, uniqueKeys(d.keys));
      const other = d.otherDb;
      return other ? here.then(() => this.recopyInto(other.db, other.writes)) : here;
    }
    let pending: Promise<void> | undefined;
    for (const argv of older.argvs) {
      const next = { ...d, argv };
      pending = pending
        ? pending.then(() => this.pushRouted(next, item, db))
        : this.pushRouted(next, item, db);
    }
    return pending;
  }

  /**
   * A command replayed as the filter gave it (its db argument rewritten through dbMap). On a cluster
   * destination it goes to the node of its slot; one whose keys span slots is split per slot where that
   * keeps its meaning, otherwise its keys are re-copied (never a CROSSSLOT error).
   */
  private pushRouted(
    d: Extract<FilterDecision, { action: 'apply' }>,
    item: StreamItem,
    db: number,
  ): Promise<void> | undefined {
    if (!this.c.scope.cluster) return this.push({ db: d.db, argv: d.argv });
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
    const placed = d.serverWide ? undefined : this.c.expiries?.place(d.argv, item.end, item.at);
    if (placed === undefined) return this.pushApplied(d, item, db);
    if (placed === 'recopy') {
      this.lastDataAt = Date.now();
      const ahead = relativeExpiryKeysAhead(this.c.peek(LOOK_AHEAD_COMMANDS), db, this.c.scope.filter);
      return this.recopyInto(db, uniqueKeys([...d.keys, ...ahead]));
    }
    // One key each: none needs the cross-slot handling, but an older destination may re-copy the key.
    let pending: Promise<void> | undefined;
    for (const argv of placed) {
      const next = { ...d, argv };
      pending = pending
        ? pending.then(() => this.pushApplied(next, item, db))
        : this.pushApplied(next, item, db);
    }
    return pending;
  }

  private push(c: ApplyCommand): undefined {
    this.c.out.add(c, true);
    this.commandsApplied++;
    this.lastDataAt = Date.now();
    return undefined;
  }

  private async recopyInto(db: number, keys: Buffer[]): Promise<void> {
    if (this.c.moves) keys = this.c.moves.ownedKeys(this.c.scope.shardId, keys);
    if (keys.length === 0) return;
    const r = await this.c.recopy(db, keys);
    for (const c of r.commands) this.c.out.add(c, false);
  }
}

const DELETES = new Set(['del', 'unlink']);

function isDelete(argv: readonly Buffer[]): boolean {
  return DELETES.has(argv[0]!.toString('latin1').toLowerCase());
}

/**
 * Bytes of a command in the replication stream: a master writes every command as a RESP array of bulk
 * strings, so the command starts this many bytes before its end offset.
 */
export function commandBytes(argv: readonly Buffer[]): number {
  let n = 3 + String(argv.length).length;
  for (const a of argv) n += 5 + String(a.length).length + a.length;
  return n;
}

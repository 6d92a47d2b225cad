import { DtsError } from '../errors.ts';
import { keySlot, SLOT_COUNT } from '../redis/cluster-slot.ts';
import type { ClusterTopology } from '../redis/cluster-topology.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';

/**
 * Following slots that move between the masters of a cluster source while the task runs (redis-cli
 * --cluster reshard/rebalance: CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE per batch of keys, SETSLOT
 * NODE). Each master's stream is applied on its own, so the two sides of a move reach the destination in
 * no set order. What the streams carry (checked against Redis 7.0.15):
 *
 * - the importing master B: `RESTORE-ASKING k <abs ms> <payload> ABSTTL` per moved key (its own name: the
 *   mark of an import), and afterwards the writes that clients send it (ASK/MOVED redirects);
 * - the migrating master A: one `DEL k1 … kn` per MIGRATE, written only once B acknowledged the RESTOREs.
 *   A runs nothing between (MIGRATE blocks it), and afterwards never writes k again while B owns it
 *   (a key A lacks is redirected to B).
 *
 * So in real time every command of A on k precedes B's RESTORE of k or B's first command on k, and A's
 * DEL is A's last command on k. The rules, per key, exact without knowing where A's DEL is:
 *
 * - B's RESTORE of k: its payload is A's final state of k. A's commands on k not yet taken from A's
 *   stream are all in that payload (or are the DEL), so they are dropped from now on; B waits until what
 *   A already took is on the destination, then applies the RESTORE with REPLACE (over A's copy).
 * - B's first other command on k (k did not exist on A when a client wrote it on B): every command of A
 *   on k was run before, so before A's offset read now; B waits until A's stream has applied that far.
 * - Once A's own slot map no longer gives it the slot, A's offset read after that bounds all its commands
 *   on the slot; when A's stream has applied that far the move is over: the slot is B's, its per-key
 *   state is dropped (memory: the keys of slots in flight).
 *
 * Moves are noticed in the streams themselves: a shard writing a slot another shard owns. A poll of each
 * master's own slot map ends moves, and stops the task when a slot went to a master no shard follows.
 */

/** What the moves need of one shard's running sync. */
export interface ShardStreamView {
  shardId: string;
  /** The master the stream is read from now. */
  endpoint(): RedisEndpoint;
  /** End offset of the last command taken from the stream (one being handled included). */
  taken(): number;
  /** Everything of the stream up to this offset is on the destination. */
  settled(): number;
  /** Send the batch being built at the next whole command (someone waits for it). */
  requestFlush(): void;
  /** The master's replication offset now. */
  readOffset(): Promise<number | undefined>;
  /** The slot map as this master sees it. */
  readTopology(): Promise<ClusterTopology>;
}

export interface GateResult {
  /** Keys of the command this shard no longer owns: their effect is elsewhere already. */
  drop: Buffer[];
  /** Resolves when the previous owner's commands on the other keys are on the destination. */
  wait?: Promise<void>;
  /** The command to apply instead (RESTORE-ASKING as RESTORE … REPLACE). */
  argv?: Buffer[];
}

interface Move {
  from: string;
  to: string;
  /** Keys `to` may write without waiting (restored, or waited for once). */
  released: Set<string>;
  /** Keys restored on `to`: `from`'s commands on them after this offset are dropped. */
  dropped: Map<string, number>;
  /** `from`'s offset read once its own map gave the slot away: the move ends when it is settled. */
  endsAt?: number;
}

const POLL_MS = 1000;
const WAIT_STEP_MS = 2;
const RESTORE_ASKING = 'restore-asking';
const RESTORE = Buffer.from('RESTORE');
const REPLACE = Buffer.from('REPLACE');

export class SourceSlotMoves {
  /** Shard id per slot: who applies the slot's commands (the previous owner, while a move is open). */
  private readonly owner: (string | undefined)[];
  private readonly moves = new Map<number, Move>();
  private readonly shards = new Map<string, ShardStreamView>();
  /** Node ids (master and replicas) known per shard: a replica taking over is no new master. */
  private readonly nodeIds: Map<string, Set<string>>;
  /** Shards whose sync ended: the offset it settled at. */
  private readonly ended = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private readonly log: ((m: string) => void) | undefined;
  /** A move that cannot be followed: raised to every shard. */
  fatal: DtsError | undefined;
  movesEnded = 0;

  /** `shardOf`: the shard id of each master of the topology (undefined: one no shard follows). */
  constructor(
    topology: ClusterTopology,
    shardOf: (masterIndex: number) => string | undefined,
    log?: (m: string) => void,
  ) {
    this.owner = Array.from({ length: SLOT_COUNT }, (_, s) => shardOf(topology.slotOwner[s]!));
    this.nodeIds = new Map();
    topology.masters.forEach((m, i) => {
      const id = shardOf(i);
      if (id !== undefined) this.nodeIds.set(id, new Set([m.id, ...m.replicas.map((r) => r.id)]));
    });
    this.log = log;
  }

  attach(view: ShardStreamView): void {
    this.shards.set(view.shardId, view);
    this.ended.delete(view.shardId);
    if (!this.timer) {
      this.timer = setInterval(() => void this.poll(), POLL_MS);
      this.timer.unref();
    }
  }

  /** The shard's sync ended: waits on it resolve if it got that far, else fail. */
  detach(shardId: string): void {
    const view = this.shards.get(shardId);
    if (!view) return;
    this.ended.set(shardId, view.settled());
    this.shards.delete(shardId);
    if (this.shards.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Slots in flight now (tests, progress). */
  get open(): number {
    return this.moves.size;
  }

  /**
   * Before `shardId` applies a command writing `keys` (taken from its stream, ending at `end`): undefined
   * when no key is in a moving slot (the usual case, no allocation), else what to drop or wait for.
   */
  gate(
    shardId: string,
    argv: readonly Buffer[],
    keys: readonly Buffer[],
    end: number,
  ): GateResult | undefined {
    if (this.fatal) throw this.fatal;
    const restore = isRestoreAsking(argv);
    let result: GateResult | undefined;
    for (const key of keys) {
      const slot = keySlot(key);
      let move = this.moves.get(slot);
      if (!move) {
        const owner = this.owner[slot];
        if (owner === shardId || owner === undefined) continue;
        move = this.open_(slot, owner, shardId);
      }
      result ??= { drop: [] };
      if (move.from === shardId) {
        const after = move.dropped.get(key.toString('latin1'));
        if (after !== undefined && end > after) result.drop.push(key);
        continue;
      }
      if (move.to !== shardId) throw this.conflict(slot, move, shardId);
      const name = key.toString('latin1');
      if (restore) {
        const from = this.shards.get(move.from);
        const at = from ? from.taken() : (this.ended.get(move.from) ?? 0);
        move.dropped.set(name, at);
        move.released.add(name);
        result.wait = this.settledAt(move.from, at);
      } else if (!move.released.has(name)) {
        result.wait = this.waitForOwner(move, [name], result.wait);
      }
    }
    if (restore) {
      result ??= { drop: [] };
      result.argv = asRestoreReplace(argv);
    }
    return result;
  }

  /** Keys `shardId` may re-copy from its master: not those whose RESTORE another shard applied. */
  ownedKeys(shardId: string, keys: Buffer[]): Buffer[] {
    if (this.moves.size === 0 && keys.every((k) => this.owner[keySlot(k)] === shardId)) return keys;
    return keys.filter((k) => {
      const slot = keySlot(k);
      const move = this.moves.get(slot);
      if (move) return !(move.from === shardId && move.dropped.has(k.toString('latin1')));
      return this.owner[slot] === shardId;
    });
  }

  /** `key` is in a slot `shardId` is giving away: it may be gone from its master already. */
  leaving(shardId: string, key: Buffer): boolean {
    return this.moves.size > 0 && this.moves.get(keySlot(key))?.from === shardId;
  }

  /** Slot of `key` owned by another shard than `shardId` (the catch-up cannot order those). */
  ownerOf(key: Buffer): string | undefined {
    return this.owner[keySlot(key)];
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private open_(slot: number, from: string, to: string): Move {
    const move: Move = { from, to, released: new Set(), dropped: new Map() };
    const first = ![...this.moves.values()].some((m) => m.from === from && m.to === to);
    this.moves.set(slot, move);
    if (first)
      this.log?.(`source slots are moving from shard ${from} to shard ${to} (slot ${slot} first): following`);
    return move;
  }

  private conflict(slot: number, move: Move, shardId: string): DtsError {
    return new DtsError(
      'SOURCE_RESHARD_NOT_FOLLOWED',
      `source slot ${slot}, moving from shard ${move.from} to ${move.to}, was written by shard ${shardId} ` +
        'before that move ended (a slot moved again, or two ways at once)',
      'let each reshard of the source finish before the next one, then run the task again with a fresh full sync',
    );
  }

  /** B's first command on keys of a moving slot: A's offset now bounds A's commands on them. */
  private waitForOwner(move: Move, names: string[], before: Promise<void> | undefined): Promise<void> {
    const from = this.shards.get(move.from);
    const read = from ? from.readOffset() : Promise.resolve(this.ended.get(move.from));
    return Promise.all([before, read]).then(async ([, offset]) => {
      if (offset === undefined) {
        throw new DtsError(
          'SOURCE_RESHARD_NOT_FOLLOWED',
          `the offset of source shard ${move.from} could not be read while one of its slots moved`,
          'run the task again: it resumes from the markers',
        );
      }
      await this.settledAt(move.from, offset);
      for (const n of names) move.released.add(n);
    });
  }

  /** Resolves once shard `id` has applied its stream up to `offset` (fails if it ended before that). */
  private async settledAt(id: string, offset: number): Promise<void> {
    for (;;) {
      if (this.fatal) throw this.fatal;
      const view = this.shards.get(id);
      if (!view) {
        if ((this.ended.get(id) ?? -1) >= offset) return;
        throw new DtsError(
          'SOURCE_RESHARD_NOT_FOLLOWED',
          `source shard ${id} stopped before applying its commands on keys that moved to another shard`,
          'run the task again (a restart while the source is resharded is not exact: use a fresh full sync)',
        );
      }
      if (view.settled() >= offset) return;
      view.requestFlush();
      await new Promise((r) => setTimeout(r, WAIT_STEP_MS));
    }
  }

  /**
   * Each shard's master says which slots it serves now: slots of open moves it gave away end once its
   * stream is applied up to its offset read after that; a slot served by a master no shard follows
   * stops the task (a new master's stream is not followed).
   */
  private poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  /** A poll that starts now (a re-copy was told MOVED/ASK: a slot may have gone before any poll saw it). */
  async pollNow(): Promise<void> {
    await this.polling;
    await this.poll();
  }

  private async pollOnce(): Promise<void> {
    for (const view of [...this.shards.values()]) {
      const topology = await view.readTopology().catch(() => undefined);
      if (!topology) continue;
      const shardOfMaster = topology.masters.map((m) => this.shardByNode(m.id));
      const unknown = topology.masters.findIndex((_, i) => shardOfMaster[i] === undefined);
      if (unknown >= 0) {
        const m = topology.masters[unknown]!;
        this.fatal = new DtsError(
          'SOURCE_RESHARD_NOT_FOLLOWED',
          `source master ${m.endpoint.host}:${m.endpoint.port} (${m.id}) serves slots (${m.ranges.length} ranges) ` +
            'but no shard of the task follows it (a master added to the source cluster during the task)',
          'run the task again with a fresh full sync: the stream of a master added during a task is not followed',
        );
        return;
      }
      const gone: number[] = [];
      for (let slot = 0; slot < SLOT_COUNT; slot++) {
        const now = shardOfMaster[topology.slotOwner[slot]!]!;
        if (now === view.shardId) continue;
        let move = this.moves.get(slot);
        // A slot given away before the new owner's stream wrote it (no key, or none written yet).
        if (!move && this.owner[slot] === view.shardId) move = this.open_(slot, view.shardId, now);
        if (move && move.from === view.shardId && move.endsAt === undefined) gone.push(slot);
      }
      if (gone.length > 0) {
        const offset = await view.readOffset().catch(() => undefined);
        if (offset !== undefined) for (const s of gone) this.moves.get(s)!.endsAt = offset;
      }
    }
    const ended = new Map<string, number>();
    for (const [slot, move] of this.moves) {
      if (move.endsAt === undefined) continue;
      const from = this.shards.get(move.from);
      const settled = from ? from.settled() : this.ended.get(move.from);
      if (settled === undefined || settled < move.endsAt) continue;
      this.owner[slot] = move.to;
      this.moves.delete(slot);
      this.movesEnded++;
      const pair = `from shard ${move.from} to shard ${move.to}`;
      ended.set(pair, (ended.get(pair) ?? 0) + 1);
    }
    for (const [pair, n] of ended) {
      this.log?.(
        `${n} source slots moved ${pair} (${this.moves.size} still moving, ${this.movesEnded} in all)`,
      );
    }
  }

  private shardByNode(id: string): string | undefined {
    for (const [shard, ids] of this.nodeIds) if (ids.has(id)) return shard;
    return undefined;
  }
}

export function isRestoreAsking(argv: readonly Buffer[]): boolean {
  const name = argv[0];
  return (
    name !== undefined &&
    name.length === RESTORE_ASKING.length &&
    name.toString('latin1').toLowerCase() === RESTORE_ASKING
  );
}

/** RESTORE-ASKING as a client's RESTORE, with REPLACE: the destination holds the old owner's copy. */
function asRestoreReplace(argv: readonly Buffer[]): Buffer[] {
  const out = [RESTORE, ...argv.slice(1)];
  if (!argv.slice(4).some((a) => a.toString('latin1').toUpperCase() === 'REPLACE')) out.push(REPLACE);
  return out;
}

/** The catch-up re-copies keys from this shard's master alone: it cannot order a move between masters. */
export function reshardedInCatchUp(shardId: string): DtsError {
  return new DtsError(
    'SOURCE_RESHARD_NOT_FOLLOWED',
    `shard ${shardId} of the source cluster took part in a slot move during the full sync or before a resume ` +
      "(its stream holds keys of another master's slots), which only the incremental phase follows",
    'run the task again with a fresh full sync once the source is no longer being resharded',
  );
}

import type { KeyPredicate } from '../commands/key-filter.ts';
import { DtsError, isDtsError } from '../errors.ts';
import { keySlot, SLOT_COUNT } from '../redis/cluster-slot.ts';
import { type ClusterTopology, readClusterTopologyFromAny, shardIdOf } from '../redis/cluster-topology.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import { RespError, type RespValue } from '../redis/resp.ts';
import type { TargetRouting } from '../redis/target-routing.ts';

/**
 * FLUSHDB/FLUSHALL on one master of a cluster source removed that master's keys, which are exactly the
 * keys whose hash slot it serves: on the destination the same flush means "remove the keys of those
 * slots", and must leave every other shard's keys alone (their streams keep writing them meanwhile).
 *
 * Only keys the task syncs are removed (the key filter's: never redis-dts' own markers, skip hashes and
 * temporary keys, nor keys outside the task's prefixes). Removing is idempotent, so a flush replayed
 * after a crash (its marker is not moved past it until this returns) removes what is left.
 */

const SCAN_COUNT = 1000;
const KEYS_PER_UNLINK = 1000;
/** COUNTKEYSINSLOT commands per pipelined write. */
const COUNTS_PER_WRITE = 1024;
/** Slots emptied per pipelined write when each holds at most KEYS_PER_UNLINK keys. */
const SLOTS_PER_WRITE = 256;

export interface ShardSlots {
  shardId: string;
  /** Inclusive slot ranges the shard's master serves. */
  ranges: [number, number][];
  /** slots[s] === 1 when the shard serves slot s. */
  mask: Uint8Array;
  count: number;
}

/**
 * The slots a source shard serves, read from the source cluster's slot map now. Shards are named by
 * their master's first slot range (shardIdOf), fixed when the task started: the source is not resharded
 * during a task (README), so the master's slots now are the slots it had when it ran the flush.
 */
export async function readShardSlots(shardId: string, via: readonly RedisEndpoint[]): Promise<ShardSlots> {
  const topology = await readClusterTopologyFromAny(via);
  const master = topology.masters.find((m) => shardIdOf(m) === shardId);
  if (!master) {
    throw new DtsError(
      'SHARD_NOT_FOUND',
      `no master of the source cluster serves ${shardId} any more (the slots were moved), so the keys its ` +
        'FLUSHDB/FLUSHALL removed cannot be told',
      'run the task again with a fresh full sync: resharding the source during a task is not followed',
    );
  }
  return slotsOf(shardId, master.ranges);
}

export function slotsOf(shardId: string, ranges: [number, number][]): ShardSlots {
  const mask = new Uint8Array(SLOT_COUNT);
  let count = 0;
  for (const [start, end] of ranges) {
    for (let s = start; s <= end; s++) {
      if (mask[s] === 0) count++;
      mask[s] = 1;
    }
  }
  return { shardId, ranges, mask, count };
}

export interface EmptySlotsOptions {
  /** The destination: one server, or a cluster (its slot map is read again from these nodes). */
  routing: TargetRouting;
  /** Destination db: the flushed source db through the task's db map (a cluster destination has db 0). */
  db: number;
  slots: ShardSlots;
  /** The task's key filter: only keys it accepts are removed. */
  keep: KeyPredicate;
}

/**
 * Removes from the destination db every key the task syncs whose slot is one of `slots`; resolves with
 * the number removed. A standalone destination is scanned whole (it has no index by slot); a cluster
 * destination is asked per slot (CLUSTER COUNTKEYSINSLOT, GETKEYSINSLOT) on every master.
 */
export async function emptySlots(o: EmptySlotsOptions): Promise<number> {
  return o.routing.topology ? emptyClusterSlots(o) : emptyStandaloneSlots(o.routing.nodes[0]!, o);
}

/**
 * SCAN guarantees every key present for the whole scan is returned. Keys of `slots` are not written by
 * anyone while this runs (the flushed shard's stream waits for it; other shards write other slots), so
 * each of them is returned and removed; keys SCAN returns twice are removed once (UNLINK of a missing
 * key is a no-op). One UNLINK is in flight while the next SCAN page is read.
 */
async function emptyStandaloneSlots(node: RedisEndpoint, o: EmptySlotsOptions): Promise<number> {
  const conn = await RawConnection.open(node, { db: o.db, clientName: 'redis-dts-slot-flush' });
  let removed = 0;
  try {
    let cursor = '0';
    let inFlight: Promise<void> | undefined;
    let failure: unknown;
    let batch: Buffer[] = [];
    const send = async () => {
      const keys = batch;
      batch = [];
      await inFlight;
      if (failure !== undefined) throw failure;
      inFlight = conn.call(['UNLINK', ...keys]).then(
        (n) => {
          removed += Number(n);
        },
        (e: unknown) => {
          failure = e;
        },
      );
    };
    do {
      const reply = (await conn.call(['SCAN', cursor, 'COUNT', SCAN_COUNT])) as [Buffer, Buffer[]];
      cursor = reply[0].toString('latin1');
      for (const key of reply[1]) {
        if (o.slots.mask[keySlot(key)] === 1 && o.keep(key)) batch.push(key);
      }
      if (batch.length >= KEYS_PER_UNLINK) await send();
    } while (cursor !== '0');
    if (batch.length > 0) await send();
    await inFlight;
    if (failure !== undefined) throw failure;
  } catch (e) {
    throw targetError(e, node, 'SCAN/UNLINK');
  } finally {
    await conn.close().catch(() => conn.destroy());
  }
  return removed;
}

/**
 * Every master is asked for its count in each slot, not only the slot's owner: keys of a slot on a node
 * that does not own it mean a migration is under way, and removing them is not safe without following it.
 * That, a MOVED/ASK reply, or a slot map that changed while this ran, raises TARGET_SLOTS_MOVED, which
 * the sync answers by reading the new map and resuming from the markers, so the flush is done again.
 */
async function emptyClusterSlots(o: EmptySlotsOptions): Promise<number> {
  const before = await readClusterTopologyFromAny(o.routing.nodes);
  let removed = 0;
  for (const [index, master] of before.masters.entries()) {
    const ep = master.endpoint;
    const conn = await RawConnection.open(ep, { clientName: 'redis-dts-slot-flush' });
    try {
      const counts = await slotsWithKeys(conn, o.slots);
      for (const { slot } of counts) {
        if (before.slotOwner[slot] !== index) {
          throw slotsMoved(
            `${describeEndpoint(ep)} holds keys of slot ${slot}, which ${describeEndpoint(before.ownerOf(slot).endpoint)} serves (a slot migration is under way)`,
          );
        }
      }
      const small = counts.filter((c) => c.keys <= KEYS_PER_UNLINK);
      for (let i = 0; i < small.length; i += SLOTS_PER_WRITE) {
        removed += await emptySmallSlots(conn, small.slice(i, i + SLOTS_PER_WRITE), o.keep);
      }
      for (const { slot } of counts.filter((c) => c.keys > KEYS_PER_UNLINK)) {
        removed += await emptyOneSlot(conn, slot, o.keep);
      }
    } catch (e) {
      throw targetError(e, ep, 'CLUSTER GETKEYSINSLOT/UNLINK');
    } finally {
      await conn.close().catch(() => conn.destroy());
    }
  }
  const after = await readClusterTopologyFromAny(before.masters.map((m) => m.endpoint));
  if (!sameOwners(before, after, o.slots)) {
    throw slotsMoved('the slot map changed while the slots of a flushed source shard were emptied');
  }
  return removed;
}

/** The slots of `slots` in which this node holds keys, with their counts (pipelined COUNTKEYSINSLOT). */
async function slotsWithKeys(
  conn: RawConnection,
  slots: ShardSlots,
): Promise<{ slot: number; keys: number }[]> {
  const all: number[] = [];
  for (let s = 0; s < SLOT_COUNT; s++) if (slots.mask[s] === 1) all.push(s);
  const out: { slot: number; keys: number }[] = [];
  for (let i = 0; i < all.length; i += COUNTS_PER_WRITE) {
    const part = all.slice(i, i + COUNTS_PER_WRITE);
    const replies = await conn.pipeline(part.map((s) => ['CLUSTER', 'COUNTKEYSINSLOT', s]));
    replies.forEach((r, j) => {
      if (r instanceof RespError) throw r;
      if (Number(r) > 0) out.push({ slot: part[j]!, keys: Number(r) });
    });
  }
  return out;
}

/**
 * Slots whose count fits one reply: all their keys in one pipelined write of GETKEYSINSLOT (nobody adds
 * keys to a flushed shard's slots meanwhile), then one UNLINK per slot (one slot per command, as a
 * cluster requires), so the cost is two round trips per SLOTS_PER_WRITE slots, not per slot.
 */
async function emptySmallSlots(
  conn: RawConnection,
  slots: readonly { slot: number; keys: number }[],
  keep: KeyPredicate,
): Promise<number> {
  const replies = await conn.pipeline(slots.map((c) => ['CLUSTER', 'GETKEYSINSLOT', c.slot, c.keys]));
  const unlinks: Buffer[][] = [];
  for (const r of replies) {
    if (r instanceof RespError) throw r;
    const remove = (r as Buffer[]).filter((k) => keep(k));
    if (remove.length > 0) unlinks.push(remove);
  }
  if (unlinks.length === 0) return 0;
  let removed = 0;
  for (const r of await conn.pipeline(unlinks.map((keys) => ['UNLINK', ...keys]))) {
    if (r instanceof RespError) throw r;
    removed += Number(r);
  }
  return removed;
}

/**
 * A slot with more keys than one reply should carry. GETKEYSINSLOT returns at most `count` keys of the
 * slot, in an order of its own: keys the filter keeps
 * stay in the slot, so each request asks for those already seen plus a batch, and the slot is done once
 * a reply is shorter than the request (it held no more keys than that).
 */
async function emptyOneSlot(conn: RawConnection, slot: number, keep: KeyPredicate): Promise<number> {
  const kept = new Set<string>();
  let removed = 0;
  for (;;) {
    const want = kept.size + KEYS_PER_UNLINK;
    const keys = (await conn.call(['CLUSTER', 'GETKEYSINSLOT', slot, want])) as RespValue[];
    const remove: Buffer[] = [];
    for (const k of keys as Buffer[]) {
      if (keep(k)) remove.push(k);
      else kept.add(k.toString('latin1'));
    }
    if (remove.length > 0) removed += Number(await conn.call(['UNLINK', ...remove]));
    if (keys.length < want) return removed;
  }
}

function sameOwners(a: ClusterTopology, b: ClusterTopology, slots: ShardSlots): boolean {
  for (let s = 0; s < SLOT_COUNT; s++) {
    if (slots.mask[s] === 1 && a.ownerOf(s).id !== b.ownerOf(s).id) return false;
  }
  return true;
}

function slotsMoved(message: string, cause?: unknown): DtsError {
  return new DtsError(
    'TARGET_SLOTS_MOVED',
    `${message} — the destination cluster was resharded or failed over while the task ran`,
    'run the task again: it reads the new slot map and resumes from the markers',
    cause === undefined ? undefined : { cause },
  );
}

/** MOVED/ASK: the destination's slots moved; other failures keep their own code (unreachable, ACL…). */
function targetError(e: unknown, ep: RedisEndpoint, during: string): unknown {
  if (isDtsError(e)) return e;
  if (e instanceof RespError && (e.prefix === 'MOVED' || e.prefix === 'ASK')) {
    return slotsMoved(`${describeEndpoint(ep)} answered ${e.message} to ${during}`, e);
  }
  if (e instanceof RespError) {
    return new DtsError(
      'SLOT_FLUSH_FAILED',
      `${describeEndpoint(ep)} refused ${during} while the slots of a flushed source shard were emptied (${e.message})`,
      'allow the destination user SCAN, UNLINK and CLUSTER COUNTKEYSINSLOT/GETKEYSINSLOT, then run the task again (it resumes before the flush)',
      { cause: e },
    );
  }
  return e;
}

/** Empties a source shard's slots in a destination db; resolves with the keys removed and the slots. */
export type ShardFlush = (targetDb: number) => Promise<{ removed: number; slots: number }>;

/**
 * The flush of one cluster source shard on the destination: its slots read from the source's slot map
 * (asked of `sourceNodes()`, the shard's master now first) each time, then emptied.
 */
export function shardFlush(o: {
  shardId: string;
  sourceNodes: () => readonly RedisEndpoint[];
  routing: TargetRouting;
  keep: KeyPredicate;
}): ShardFlush {
  return async (db) => {
    const slots = await readShardSlots(o.shardId, o.sourceNodes());
    const removed = await emptySlots({ routing: o.routing, db, slots, keep: o.keep });
    return { removed, slots: slots.count };
  };
}

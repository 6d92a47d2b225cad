import { keySlot } from '../redis/cluster-slot.ts';
import type { ApplyCommand } from './marker-applier.ts';
import { isSourceSlotsMoved } from './recopy-following-master.ts';
import type { SourceSlotMoves } from './source-slot-moves.ts';

/** Reads keys from this shard's master: `follow` set, a failover is followed, else MOVED/ASK is thrown. */
export type RecopyRead = (keys: Buffer[], follow: boolean) => Promise<ApplyCommand[]>;

/**
 * A re-copy on a shard of a cluster source whose slots may be moving to another master. A key whose
 * RESTORE another shard applied is that shard's now (read here it would be a DEL); a key of a slot this
 * master is giving away may be gone from it already (MOVED or ASK): its state then comes from the new
 * master's RESTORE, or it was deleted here and the DEL follows in this stream; either way nothing of it is
 * written from here.
 */
export async function recopyAroundMoves(
  moves: SourceSlotMoves,
  shardId: string,
  keys: Buffer[],
  read: RecopyRead,
): Promise<ApplyCommand[]> {
  const owned = moves.ownedKeys(shardId, keys);
  let leaving = owned.filter((k) => moves.leaving(shardId, k));
  let staying = owned.filter((k) => !leaving.includes(k));
  const commands: ApplyCommand[] = [];
  if (staying.length > 0) {
    try {
      commands.push(...(await read(staying, false)));
      staying = [];
    } catch (e) {
      if (!isSourceSlotsMoved(e)) throw e;
      // A slot may have left this master before a poll saw it; else it failed over (followed below).
      await moves.pollNow();
      leaving = [...leaving, ...staying.filter((k) => moves.leaving(shardId, k))];
      staying = moves.ownedKeys(shardId, staying).filter((k) => !leaving.includes(k));
    }
  }
  if (staying.length > 0) commands.push(...(await read(staying, true)));
  for (const group of bySlot(leaving)) {
    // One transaction per slot fails whole for one key gone: the others are then read one by one.
    const gone = await readUnlessMoved(read, group, commands);
    if (gone && group.length > 1) for (const k of group) await readUnlessMoved(read, [k], commands);
  }
  return commands;
}

/** Pushes what `keys` read to; true when the master redirected them (the slot left it). */
async function readUnlessMoved(read: RecopyRead, keys: Buffer[], into: ApplyCommand[]): Promise<boolean> {
  try {
    into.push(...(await read(keys, false)));
    return false;
  } catch (e) {
    if (!isSourceSlotsMoved(e)) throw e;
    return true;
  }
}

function bySlot(keys: Buffer[]): Buffer[][] {
  const groups = new Map<number, Buffer[]>();
  for (const k of keys) {
    const slot = keySlot(k);
    const group = groups.get(slot);
    if (group) group.push(k);
    else groups.set(slot, [k]);
  }
  return [...groups.values()];
}

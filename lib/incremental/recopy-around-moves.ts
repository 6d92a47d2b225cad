import { groupBySlot } from '../redis/cluster-slot.ts';
import type { ApplyCommand } from './marker-applier.ts';
import { isSourceSlotsMoved } from './recopy-following-master.ts';
import type { SourceSlotMoves } from './source-slot-moves.ts';

/** Reads keys from this shard's master: `follow` set, a failover is followed, else MOVED/ASK is thrown. */
export type RecopyRead = (keys: Buffer[], follow: boolean) => Promise<ApplyCommand[]>;

/**
 * A re-copy on a shard of a cluster source whose slots may be moving to another master. A key whose
 * RESTORE another shard applied is that shard's now (read here it would be a DEL). A key of a slot this
 * master is giving away may be gone from it already (MOVED or ASK), and is deleted on the destination
 * (`deleted`): either it moved, and the new master's RESTORE, which waits for this shard's stream to be
 * applied up to the command being handled, writes it again over the DEL; or this master removed it
 * without a DEL of its own to follow (a RENAME away, an SMOVE of the last member), and the DEL is its
 * effect. (Writing nothing lost that second case: the renamed-away key stayed on the destination.)
 */
export async function recopyAroundMoves(
  moves: SourceSlotMoves,
  shardId: string,
  keys: Buffer[],
  read: RecopyRead,
  deleted: (keys: Buffer[]) => ApplyCommand[],
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
  for (const group of groupBySlot(leaving)) {
    // One transaction per slot fails whole for one key gone: the others are then read one by one.
    if (!(await readUnlessMoved(read, group, commands))) continue;
    if (group.length === 1) commands.push(...deleted(group));
    else {
      for (const k of group) if (await readUnlessMoved(read, [k], commands)) commands.push(...deleted([k]));
    }
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

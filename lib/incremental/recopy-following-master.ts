import { DtsError } from '../errors.ts';

/** How long a re-copy waits for a cluster source to settle on a new master for its slots (≈10 s). */
const ATTEMPTS = 40;
const WAIT_MS = 250;

export function isSourceSlotsMoved(e: unknown): boolean {
  return e instanceof DtsError && e.code === 'SOURCE_SLOTS_MOVED';
}

/**
 * Runs a re-copy read on a cluster shard whose master may fail over under it. A read answered MOVED
 * means the node we read no longer serves the slots, so `follow` moves the shard to the master that
 * does (it re-reads the slot map), and the read is made again there: a read only reads, so repeating it
 * is safe, and the stamp it then carries is the new master's, which continues the same offsets (PSYNC2).
 * Without `follow` (a standalone source) the error stands.
 */
export async function readFollowingMaster<T>(
  read: () => Promise<T>,
  follow: (() => Promise<void>) | undefined,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (e) {
      if (!follow || !isSourceSlotsMoved(e) || attempt >= ATTEMPTS) throw e;
      await follow();
      // The promoted master may not be in every node's slot map yet: give the cluster a moment.
      if (attempt > 1) await new Promise((r) => setTimeout(r, WAIT_MS));
    }
  }
}

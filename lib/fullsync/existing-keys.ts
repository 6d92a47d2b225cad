import type { Redis } from 'ioredis';
import { DtsError } from '../errors.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import { printableKey } from './copy-key-in-parts.ts';

const NAMED = 10;
/** The precheck's temporary keys (TEMP_KEY_PREFIX + 'precheck:'), never the user's. */
const PRECHECK_PROBE = Buffer.from('redis-dts:tmp:precheck:');

/** Keys already in the given destination dbs: count per db and up to ten names. */
export async function existingKeys(
  target: Redis,
  dbs: readonly number[],
): Promise<{ db: number; count: number; examples: string[] }[]> {
  const found: { db: number; count: number; examples: string[] }[] = [];
  try {
    for (const db of dbs) {
      await target.select(db);
      let count = await target.dbsize();
      if (count === 0) continue;
      const examples: string[] = [];
      let probes = 0;
      let cursor = '0';
      do {
        const [next, keys] = await target.scanBuffer(cursor, 'COUNT', 100);
        cursor = String(next);
        for (const k of keys) {
          if (k.subarray(0, PRECHECK_PROBE.length).equals(PRECHECK_PROBE)) probes++;
          else if (examples.length < NAMED) examples.push(printableKey(k));
        }
      } while (cursor !== '0' && examples.length < NAMED);
      // A precheck's probe keys (left to their 60 s TTL where DEL was refused) are not the user's data;
      // they are only subtracted when the whole db was scanned, i.e. when it is small.
      if (cursor === '0') count -= probes;
      if (count <= 0) continue;
      found.push({ db, count, examples });
    }
  } finally {
    // connectAdmin clients live in db 0; leave this one there for its other users.
    await target.select(0);
  }
  return found;
}

/** `--existing-keys block`: refuse to start when a selected destination db holds any key. */
export async function assertTargetEmpty(
  target: Redis,
  ep: RedisEndpoint,
  dbs: readonly number[],
): Promise<void> {
  const found = await existingKeys(target, dbs);
  if (found.length === 0) return;
  const what = found
    .map(
      (f) =>
        `db ${f.db} has ${f.count} key${f.count === 1 ? '' : 's'} (${f.examples.join(', ')}${f.count > f.examples.length ? ', …' : ''})`,
    )
    .join('; ');
  throw new DtsError(
    'TARGET_NOT_EMPTY',
    `${describeEndpoint(ep)} is not empty: ${what}; nothing was written`,
    'empty those dbs, map to empty ones with --db-map, or pass --existing-keys overwrite to replace keys of the same name',
  );
}

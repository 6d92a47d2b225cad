import type { Redis } from 'ioredis';
import { DtsError } from '../errors.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import { printableKey } from './copy-key-in-parts.ts';

const NAMED = 10;

/** Keys already in the given destination dbs: count per db and up to ten names. */
export async function existingKeys(
  target: Redis,
  dbs: readonly number[],
): Promise<{ db: number; count: number; examples: string[] }[]> {
  const found: { db: number; count: number; examples: string[] }[] = [];
  try {
    for (const db of dbs) {
      await target.select(db);
      const count = await target.dbsize();
      if (count === 0) continue;
      const examples: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await target.scanBuffer(cursor, 'COUNT', 100);
        cursor = String(next);
        for (const k of keys) if (examples.length < NAMED) examples.push(printableKey(k));
      } while (cursor !== '0' && examples.length < NAMED);
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

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import type { RedisProcess } from './redis-server.ts';
import { seedManyKeys } from './seed.ts';
import type { WriterStats, Writers } from './writers.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** State directories for sync runs, each new; `removeAll` (in afterAll) deletes them. */
export function stateDirs(prefix: string): { make: () => string; removeAll: () => void } {
  const dirs: string[] = [];
  return {
    make() {
      const d = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
    removeAll() {
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}

/** `count` mixed keys (`seed:<db>:…`) in each of `dbs`. */
export async function seedDbs(source: RedisProcess, dbs: number[], count: number): Promise<void> {
  for (const db of dbs) await seedManyKeys(source.url, { db, count, mixed: true, prefix: `seed:${db}:` });
}

/** Writers have stopped: waits for short-lived keys to expire on the source, so both sides agree. */
export async function settle(writers: Writers): Promise<WriterStats> {
  const stats = await writers.stop();
  expect(stats.ops).toBeGreaterThan(0);
  await sleep(700);
  return stats;
}

/** No redis-dts key (marker, skip hash, heartbeat) is left in any db of these servers once a task ended. */
export async function assertNoInternalKeys(...urls: string[]): Promise<void> {
  for (const url of urls) {
    const c = new Redis(url);
    try {
      for (let db = 0; db < 16; db++) {
        await c.select(db);
        expect(await c.keys('redis-dts:*'), `redis-dts keys in db ${db} of ${url}`).toEqual([]);
      }
    } finally {
      c.disconnect();
    }
  }
}

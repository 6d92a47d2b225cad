import { classifyAdminError } from '../redis/admin-client.ts';
import type { PrecheckSide } from './types.ts';

export interface DbAvailability {
  /** The given dbs the server does not have. */
  missing: number[];
  /** How that was established, for the report. */
  basis: string;
}

/**
 * Which of `dbs` the server lacks: a cluster has db 0 only; otherwise CONFIG GET databases, or, where
 * managed services disable CONFIG, a SELECT of each db (harmless, and answers the same question).
 */
export async function dbAvailability(side: PrecheckSide, dbs: readonly number[]): Promise<DbAvailability> {
  const wanted = [...new Set(dbs)].sort((a, b) => a - b);
  if (side.info.clusterEnabled) {
    return { missing: wanted.filter((db) => db !== 0), basis: 'cluster mode: db 0 only' };
  }
  const databases = Number(await side.config('databases'));
  if (Number.isInteger(databases) && databases > 0) {
    return {
      missing: wanted.filter((db) => db >= databases),
      basis: `databases ${databases}: dbs 0..${databases - 1}`,
    };
  }
  const missing: number[] = [];
  try {
    for (const db of wanted) {
      try {
        await side.client.select(db);
      } catch (e) {
        if (e instanceof Error && /DB index is out of range|invalid DB index/i.test(e.message))
          missing.push(db);
        else throw classifyAdminError(side.client, e, 'SELECT');
      }
    }
  } finally {
    await side.client.select(0).catch(() => undefined);
  }
  return { missing, basis: 'CONFIG GET databases is unavailable, so each db was tried with SELECT' };
}

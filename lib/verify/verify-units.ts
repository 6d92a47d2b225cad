import { targetDbFor } from '../commands/key-filter.ts';
import type { FullSyncUnit } from '../fullsync/copy-unit.ts';
import { planUnits } from '../fullsync/plan-units.ts';

/**
 * The dbs to verify. With --dbs, those (as the full sync copies them). Without, every db that holds
 * keys on the source, plus every source db whose destination db holds keys: keys left in a destination
 * db whose source db is empty are extra keys too, which a plan from the source alone would never look at.
 */
export function planVerifyUnits(o: {
  sourceKeyspace: Record<number, { keys: number }>;
  targetKeyspace: Record<number, { keys: number }>;
  dbs?: readonly number[];
  dbMap?: Readonly<Record<number, number>>;
}): FullSyncUnit[] {
  if (o.dbs && o.dbs.length > 0) return planUnits({ keyspace: o.sourceKeyspace, dbs: o.dbs, dbMap: o.dbMap });
  const dbs = new Set(
    Object.keys(o.sourceKeyspace)
      .map(Number)
      .filter((db) => (o.sourceKeyspace[db]?.keys ?? 0) > 0),
  );
  for (const [t, space] of Object.entries(o.targetKeyspace)) {
    if ((space?.keys ?? 0) === 0) continue;
    const source = sourceDbOf(Number(t), o.dbMap);
    if (source !== undefined) dbs.add(source);
  }
  return planUnits({ keyspace: o.sourceKeyspace, dbs: [...dbs], dbMap: o.dbMap });
}

/** The source db copied into destination db `t`, if any. */
function sourceDbOf(t: number, dbMap: Readonly<Record<number, number>> | undefined): number | undefined {
  for (const [s, to] of Object.entries(dbMap ?? {})) if (to === t) return Number(s);
  // Unmapped dbs keep their number, unless the map sends that source db elsewhere.
  return targetDbFor(dbMap, t) === t ? t : undefined;
}

import type { FullSyncUnit, UnitProgress } from '../fullsync/copy-unit.ts';
import type { UnitCheckpoint } from '../state/task-store.ts';

export function unitCheckpoint(unit: FullSyncUnit, p: UnitProgress): UnitCheckpoint {
  return {
    ...p,
    unitId: unit.unitId,
    sourceDb: unit.sourceDb,
    targetDb: unit.targetDb,
    ...(unit.shardId ? { shardId: unit.shardId } : {}),
    ...(unit.sourceNode ? { sourceNode: unit.sourceNode } : {}),
    updatedAt: new Date().toISOString(),
  };
}

/** The spec's dbMap has string keys (JSON); the core maps numbers. */
export function numericDbMap(m: Record<string, number> | undefined): Record<number, number> | undefined {
  return m ? Object.fromEntries(Object.entries(m).map(([k, v]) => [Number(k), v])) : undefined;
}

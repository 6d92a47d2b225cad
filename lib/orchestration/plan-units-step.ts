import type { Redis } from 'ioredis';
import { CheckpointWriter } from '../fullsync/checkpoint-writer.ts';
import { type FullSyncUnit, freshProgress } from '../fullsync/copy-unit.ts';
import { assertTargetEmpty } from '../fullsync/existing-keys.ts';
import { clusterUnits, planUnits } from '../fullsync/plan-units.ts';
import { numericDbMap, unitCheckpoint } from '../fullsync/unit-checkpoint.ts';
import { connectAdmin, serverInfo } from '../redis/admin-client.ts';
import { openTargetRouting } from '../redis/target-routing.ts';
import type { TaskStore } from '../state/task-store.ts';
import { fullSyncCompleted, markFullSyncStarted } from './lifecycle-events.ts';
import { sourceShards } from './source-shards.ts';
import { type SecretValues, stepEndpoints } from './step-endpoints.ts';
import type { PlanResult, TaskStepInput } from './step-types.ts';

/**
 * Standard workflows keep at most 25,000 history events. One CopyChunk iteration costs 7 (five for the
 * Task state, two for its Choice); this share of the budget leaves room for every other state, after
 * which the machine continues as a new execution of the same task.
 */
export const CHUNK_ITERATION_BUDGET = 2800;

/**
 * The PlanUnits state, run before the FullSync Map and again after it: plans the units, stores a fresh
 * checkpoint for each new one (so a rerun knows the copy started and does not mistake our keys for a
 * non-empty destination), and returns the units not yet done.
 */
export async function planUnitsStep(
  input: TaskStepInput,
  o: { store: TaskStore; secrets?: SecretValues },
): Promise<PlanResult> {
  const { spec, taskId } = input;
  const { source, target } = stepEndpoints(spec, o.secrets);
  const admins: Redis[] = [];
  try {
    const shards = await sourceShards(source);
    let units: FullSyncUnit[];
    if (shards.length === 1 && shards[0]!.tag === undefined) {
      const src = await connectAdmin(source);
      admins.push(src);
      const info = await serverInfo(src);
      units = planUnits({ keyspace: info.keyspace, dbs: spec.dbs, dbMap: numericDbMap(spec.dbMap) });
    } else {
      units = clusterUnits(shards, numericDbMap(spec.dbMap));
    }
    const saved = new Map((await o.store.listCheckpoints(taskId)).map((c) => [c.value.unitId, c]));
    if (saved.size === 0 && spec.existingKeys === 'block') {
      // Each master of a cluster destination holds its own slots' keys.
      for (const node of (await openTargetRouting(target)).nodes) {
        const tgt = await connectAdmin(node);
        admins.push(tgt);
        await assertTargetEmpty(tgt, node, [...new Set(units.map((u) => u.targetDb))]);
      }
    }
    const writer = new CheckpointWriter(
      o.store,
      taskId,
      new Map([...saved].map(([id, c]) => [id, c.version])),
      { minIntervalMs: 0 },
    );
    for (const u of units) if (!saved.has(u.unitId)) writer.update(unitCheckpoint(u, freshProgress()));
    await writer.flush();
    await o.store.updateTask(taskId, { phase: 'full-sync' });
    await markFullSyncStarted(o.store, taskId);

    const pending = units.filter((u) => saved.get(u.unitId)?.value.done !== true);
    if (pending.length === 0) {
      const all = (await o.store.listCheckpoints(taskId)).map((c) => c.value);
      await fullSyncCompleted(o.store, spec, taskId, {
        reader: 'scan',
        keys: all.reduce((n, u) => n + u.keysWritten, 0),
        bytes: all.reduce((n, u) => n + u.bytes, 0),
      });
    }
    return {
      units: pending,
      allDone: pending.length === 0,
      maxIterations: Math.max(1, Math.floor(CHUNK_ITERATION_BUDGET / Math.max(1, pending.length))),
    };
  } finally {
    await Promise.all(admins.map((a) => a.quit().catch(() => a.disconnect())));
  }
}

import { makeKeyFilter } from '../commands/key-filter.ts';
import { DtsError } from '../errors.ts';
import { numericDbMap } from '../fullsync/unit-checkpoint.ts';
import type { ProgressSink } from '../progress/progress-reporter.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import type { TaskSpec } from '../task/spec.ts';
import { processMemoryBudget, resolveMemoryBudget } from '../util/memory-budget.ts';
import { verifyData } from './verify-data.ts';
import { openVerifySide } from './verify-side.ts';
import type { VerifyOptions, VerifyReport } from './verify-types.ts';
import { planVerifyUnits } from './verify-units.ts';

export interface VerifyTaskOptions {
  spec: TaskSpec;
  /** The spec's endpoints, resolved (passwords read): resolveEndpoint locally, stepEndpoints on AWS. */
  source: RedisEndpoint;
  target: RedisEndpoint;
  progress?: ProgressSink;
  signal?: AbortSignal;
  roundDelayMs?: VerifyOptions['roundDelayMs'];
  maxExamples?: number;
}

/**
 * Verifies a task as its spec describes it: the same dbs, db mapping and key filter as the sync, with
 * the spec's verify settings. Shared by `redis-dts verify` and the state machine's Verify step.
 */
export async function verifyTask(o: VerifyTaskOptions): Promise<VerifyReport> {
  const { spec } = o;
  const dbMap = numericDbMap(spec.dbMap);
  const units =
    spec.verify.mode === 'off'
      ? []
      : planVerifyUnits({
          sourceKeyspace: spec.dbs ? {} : await keyspaceOf(o.source),
          targetKeyspace: spec.dbs ? {} : await keyspaceOf(o.target),
          dbs: spec.dbs,
          dbMap,
        });
  // Values over the budget's share are compared in pages; batches of the rest stay within it too.
  const budget = processMemoryBudget(resolveMemoryBudget(spec.limits.memoryBudget));
  return verifyData({
    bigKeyBytes: Math.min(DEFAULT_BIG_KEY_BYTES, budget.inPartsAbove),
    maxBatchBytes: Math.min(DEFAULT_BATCH_BYTES, Math.floor(budget.bytes / 16)),
    source: o.source,
    target: o.target,
    units,
    // The heartbeat prefix is configurable; whatever it is, the heartbeat key is never reported.
    keep: makeKeyFilter({
      ...spec.keyFilter,
      exclude: [...(spec.keyFilter?.exclude ?? []), spec.incremental.heartbeat.prefix],
    }),
    mode: spec.verify.mode,
    rounds: spec.verify.rounds,
    sampleRate: spec.verify.sampleRate,
    ttlToleranceMs: spec.verify.ttlToleranceMs,
    ...(o.roundDelayMs !== undefined ? { roundDelayMs: o.roundDelayMs } : {}),
    ...(o.maxExamples !== undefined ? { maxExamples: o.maxExamples } : {}),
    ...(o.progress ? { progress: o.progress } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
}

const DEFAULT_BIG_KEY_BYTES = 8 * 1024 * 1024;
const DEFAULT_BATCH_BYTES = 16 * 1024 * 1024;

/** Keys per db; on a cluster, db 0's keys summed over every master. */
async function keyspaceOf(ep: RedisEndpoint): Promise<Record<number, { keys: number }>> {
  const { keyspace } = (await openVerifySide(ep)).caps;
  if (keyspace) return keyspace;
  throw new DtsError(
    'NO_KEYSPACE_INFO',
    `${describeEndpoint(ep)} does not allow INFO, so the dbs holding keys are unknown`,
    'name the dbs to verify (--dbs 0,1 or "dbs" in the spec), or allow INFO for this user',
  );
}

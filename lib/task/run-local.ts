import { DtsError, isDtsError } from '../errors.ts';
import { type FullSyncSummary, runFullSync } from '../fullsync/full-sync-job.ts';
import { keyErrorsError } from '../fullsync/key-errors.ts';
import { numericDbMap } from '../fullsync/unit-checkpoint.ts';
import { runPrecheck } from '../precheck/run-precheck.ts';
import type { PrecheckReport } from '../precheck/types.ts';
import { assertPrecheckAllows, precheckForResume } from '../precheck/verdict.ts';
import type { ProgressSink } from '../progress/progress-reporter.ts';
import { openLocalStore } from '../state/dynamo-client.ts';
import type { TaskStore } from '../state/task-store.ts';
import { verifyFailedError } from '../verify/summary.ts';
import { verifyTask } from '../verify/verify-task.ts';
import type { VerifyReport } from '../verify/verify-types.ts';
import { resolveEndpoint } from './resolve-endpoint.ts';
import { defaultTaskId, generateTaskName, redactSpec, type TaskSpec } from './spec.ts';

export interface RunLocalOptions {
  /** On-disk state (embedded DynamoDB); undefined keeps it in memory (no resume). */
  stateDir?: string;
  progress?: ProgressSink;
  signal?: AbortSignal;
  /** Called with the precheck report before anything is copied (the CLI prints it). */
  onPrecheck?: (report: PrecheckReport) => void;
  /** Called with the verification report after a completed copy (the CLI prints its summary). */
  onVerify?: (report: VerifyReport) => void;
}

/**
 * Runs a task on this machine with the embedded DynamoDB: records the task, runs its phases, and
 * leaves its status and last error in the store for `redis-dts status`.
 *
 * Today the phases are the full sync only; the local state machine (issue 5) will take over the
 * sequencing with the same core functions.
 */
export async function runTaskLocally(spec: TaskSpec, o: RunLocalOptions = {}): Promise<FullSyncSummary> {
  if (spec.syncType !== 'full') {
    throw new DtsError(
      'NOT_BUILT',
      `syncType '${spec.syncType}' needs incremental sync, which is not built yet`,
      'run with --sync-type full (syncType: "full") for now',
    );
  }
  const source = resolveEndpoint(spec.source, 'source');
  const target = resolveEndpoint(spec.target, 'target');
  const taskId = spec.taskId ?? defaultTaskId(spec);
  const local = await openLocalStore(o.stateDir !== undefined ? { stateDir: o.stateDir } : {});
  try {
    await recordStart(local.store, taskId, spec);
    try {
      const resuming = (await local.store.listCheckpoints(taskId)).length > 0;
      const report = precheckForResume(await runPrecheck(spec), resuming);
      await local.store.updateTask(taskId, {
        phase: 'precheck',
        precheck: { status: report.status, items: report.items },
      });
      o.onPrecheck?.(report);
      assertPrecheckAllows(report, spec.acknowledgeWarnings);
      await local.store.updateTask(taskId, { phase: 'full-sync' });
      const summary = await runFullSync({
        taskId,
        source,
        target,
        dbs: spec.dbs,
        dbMap: numericDbMap(spec.dbMap),
        keyFilter: spec.keyFilter,
        existingKeys: spec.existingKeys,
        throttle: spec.throttle,
        chunkKeys: spec.fullSync?.chunkKeys,
        maxInFlightBytes: spec.fullSync?.maxInFlightBytes,
        checkpointIntervalMs: spec.fullSync?.checkpointIntervalMs,
        store: local.store,
        progress: o.progress,
        signal: o.signal,
      });
      // The state machine's Verify step, here: after a complete copy, unless the spec turns it off.
      if (!summary.stopped && summary.keyErrors.length === 0 && spec.verify.mode !== 'off') {
        await local.store.updateTask(taskId, { phase: 'verify' });
        const report = await verifyTask({ spec, source, target, progress: o.progress, signal: o.signal });
        await local.store.updateTask(taskId, {
          progress: { keysCompared: report.keysCompared, keysDiffering: report.keysDiffering },
        });
        o.onVerify?.(report);
        if (!report.consistent && !report.stopped && !onlyKeptExtras(report, spec))
          throw verifyFailedError(report);
      }
      const failed = summary.keyErrors.length > 0;
      await local.store.updateTask(taskId, {
        status: summary.stopped ? 'stopped' : failed ? 'failed' : 'succeeded',
        phase: summary.stopped ? 'full-sync' : 'done',
        progress: { keysWritten: summary.keysWritten, bytes: summary.bytes },
        lastError: failed ? keyErrorsRecord(summary) : undefined,
      });
      return summary;
    } catch (e) {
      const err = isDtsError(e)
        ? e
        : new DtsError('INTERNAL', String((e as Error)?.message ?? e), 'report a bug');
      await local.store
        .updateTask(taskId, {
          status: 'failed',
          lastError: { code: err.code, message: err.message, fix: err.fix },
        })
        .catch(() => undefined);
      throw e;
    }
  } finally {
    await local.close();
  }
}

async function recordStart(store: TaskStore, taskId: string, spec: TaskSpec): Promise<void> {
  const now = new Date().toISOString();
  await store.clearStop(taskId);
  const existing = await store.getTask(taskId);
  if (existing) {
    await store.updateTask(taskId, { status: 'running', phase: 'full-sync', lastError: undefined });
    return;
  }
  await store.putTask({
    taskId,
    name: spec.name ?? generateTaskName(spec),
    spec: redactSpec(spec) as unknown as Record<string, unknown>,
    status: 'running',
    phase: 'full-sync',
    createdAt: now,
    updatedAt: now,
  });
}

/** The summary's refused keys as the task's last error. */
export function summaryKeyErrors(s: FullSyncSummary): DtsError {
  return keyErrorsError(
    s.units.reduce((n, u) => n + u.keysFailed, 0),
    s.keyErrors,
  );
}

function keyErrorsRecord(s: FullSyncSummary): { code: string; message: string; fix: string } {
  const e = summaryKeyErrors(s);
  return { code: e.code, message: e.message, fix: e.fix };
}

/** Under `overwrite` the destination may keep keys the source lacks: those alone are not a failed copy. */
function onlyKeptExtras(report: VerifyReport, spec: TaskSpec): boolean {
  if (spec.existingKeys !== 'overwrite') return false;
  const { extra, ...others } = report.categories;
  return extra.count > 0 && Object.values(others).every((c) => c.count === 0);
}

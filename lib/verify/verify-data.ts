import { setTimeout as sleep } from 'node:timers/promises';
import type { FullSyncUnit } from '../fullsync/copy-unit.ts';
import { KeyScanner } from '../fullsync/key-scanner.ts';
import type { KeyBatch } from '../fullsync/stamped-chunk-reader.ts';
import { type ProgressSink, silentProgress } from '../progress/progress-reporter.ts';
import type { RawConnection } from '../redis/raw-connection.ts';
import { DifferenceTracker, emptyCategories } from './difference-tracker.ts';
import { verifySelection } from './key-sample.ts';
import { openSession } from './verify-session.ts';
import { assertClusterDb, isCluster, openVerifySide, type VerifySide } from './verify-side.ts';
import type { VerifyOptions, VerifyReport } from './verify-types.ts';

/** Batches compared at once per unit: enough to keep both servers busy while replies are parsed. */
const BATCHES_IN_FLIGHT = 4;
/** Keys per pipelined batch when re-checking known differences. */
const RECHECK_BATCH = 500;

/**
 * Compares the destination with the source, db by db (units), and reports what differs.
 *
 * Round 1 SCANs each source db and compares every selected key on both sides in pipelined batches
 * (compare-keys.ts), and meanwhile SCANs the destination db for keys the source does not have. Either side may be
 * a Redis Cluster (db 0 only): every master is scanned, and each key is read on the master owning its
 * slot (verify-session.ts). Data may still be changing (an incremental sync running, keys expiring), so
 * a difference is only believed if it persists: rounds 2..N re-check just the differing keys after a
 * delay, and keys that became equal drop out. Memory stays bounded: a few batches in flight, big keys
 * compared in pages, and at most maxTrackedKeys differing keys remembered. Only read commands are used (no DEBUG, no scripts).
 */
export async function verifyData(o: VerifyOptions): Promise<VerifyReport> {
  const progress = o.progress ?? silentProgress;
  try {
    return await runRounds(o, progress);
  } finally {
    progress.finish();
  }
}

async function runRounds(o: VerifyOptions, progress: ProgressSink): Promise<VerifyReport> {
  const started = performance.now();
  const base = emptyReport(o);
  if (o.mode === 'off') return base;
  const mode = o.mode;
  const [source, target] = await Promise.all([openVerifySide(o.source), openVerifySide(o.target)]);
  for (const u of o.units) {
    assertClusterDb(source, u.sourceDb, u.unitId);
    assertClusterDb(target, u.targetDb, u.unitId);
  }
  const srcCaps = source.caps;
  const tgtCaps = target.caps;
  const tracker = new DifferenceTracker(o.units, {
    maxTracked: o.maxTrackedKeys ?? 100_000,
    maxExamples: o.maxExamples ?? 10,
  });
  const select = verifySelection(o.keep, o.sampleRate);
  const stopped = () => o.signal?.aborted === true;
  let bytes = 0;
  const open = (unit: FullSyncUnit) =>
    openSession(o, unit, {
      mode,
      source,
      target,
      onBytes: (n) => {
        bytes += n;
      },
    });

  // Round 1: every selected key. Progress counts keys looked at on either side, so it only grows.
  const rate = Math.min(1, o.sampleRate);
  let keysTotal = Math.round(
    o.units.reduce(
      (n, u) => n + (srcCaps.keyspace?.[u.sourceDb]?.keys ?? 0) + (tgtCaps.keyspace?.[u.targetDb]?.keys ?? 0),
      0,
    ) * rate,
  );
  let keysDone = 0;
  const report = (phase: string, unit: FullSyncUnit) =>
    progress.update({ phase, unit: unit.unitId, keysDone, keysTotal, bytesDone: bytes });
  const round1Start = performance.now();
  for (const [index, unit] of o.units.entries()) {
    if (stopped()) break;
    const stats = base.units[index]!;
    progress.log(
      `verifying ${unit.unitId}: source db ${unit.sourceDb}${layout(source)} → target db ${unit.targetDb}${layout(target)}`,
      { unit: unit.unitId, mode },
    );
    const session = await open(unit);
    // The two passes run side by side: the source pass keeps the source busy with DUMPs while the
    // destination pass mostly scans the destination (its lookups on the source are one EXISTS per
    // batch), so each server does its share at once instead of one after the other. A failure in one
    // stops the other before the session closes.
    let failed = false;
    const halted = () => failed || stopped();
    const pass = (run: () => Promise<void>) =>
      run().catch((e: unknown) => {
        failed = true;
        throw e;
      });
    try {
      const passes = await Promise.allSettled([
        pass(() =>
          forEachBatch(session.scans('source'), select, count(o), halted, async (keys) => {
            const results = await session.compare(keys, 'skip');
            for (let i = 0; i < keys.length; i++) {
              if (!results[i]?.length) continue;
              tracker.set(index, keys[i]!, results[i]);
              await o.onDifference?.(unit, keys[i]!);
            }
            stats.keysCompared += keys.length;
            keysDone += keys.length;
            report('verify', unit);
          }),
        ),
        pass(() =>
          forEachBatch(session.scans('target'), select, count(o), halted, async (keys) => {
            const extra = await session.findExtras(keys);
            for (let i = 0; i < keys.length; i++) {
              if (!extra[i]) continue;
              tracker.set(index, keys[i]!, [{ category: 'extra', detail: 'on the target only' }]);
              await o.onDifference?.(unit, keys[i]!);
            }
            stats.keysOnTarget += keys.length;
            keysDone += keys.length;
            report('verify: extra keys', unit);
          }),
        ),
      ]);
      for (const p of passes) if (p.status === 'rejected') throw p.reason;
    } finally {
      await session.close();
    }
  }
  const round1Seconds = (performance.now() - round1Start) / 1000;
  let rounds = 1;

  // Rounds 2..N: only what still differs, once writes in progress had time to land.
  for (let round = 2; round <= o.rounds && tracker.size > 0 && !stopped(); round++) {
    const delay = roundDelay(o, round);
    progress.log(`round ${round}: re-checking ${tracker.size} differing key(s) in ${delay} ms`, { round });
    await sleep(delay, undefined, o.signal ? { signal: o.signal } : {}).catch(() => undefined);
    if (stopped()) break;
    rounds = round;
    keysTotal = keysDone + tracker.size;
    for (const [index, unit] of o.units.entries()) {
      const keys = tracker.keysOf(index);
      if (keys.length === 0) continue;
      const session = await open(unit);
      try {
        for (let i = 0; i < keys.length && !stopped(); i += RECHECK_BATCH) {
          const part = keys.slice(i, i + RECHECK_BATCH);
          const results = await session.compare(part, 'extra');
          for (let j = 0; j < part.length; j++) tracker.set(index, part[j]!, results[j]);
          keysDone += part.length;
          report(`verify round ${round}`, unit);
        }
      } finally {
        await session.close();
      }
    }
  }
  const { keysDiffering, categories } = tracker.summarize();
  const keysCompared = base.units.reduce((n, u) => n + u.keysCompared, 0);
  const result: VerifyReport = {
    ...base,
    consistent: keysDiffering === 0 && !stopped(),
    rounds,
    keysCompared,
    keysScannedOnTarget: base.units.reduce((n, u) => n + u.keysOnTarget, 0),
    keysPerSecond: round1Seconds > 0 ? Math.round(keysCompared / round1Seconds) : 0,
    seconds: (performance.now() - started) / 1000,
    keysDiffering,
    categories,
  };
  if (tracker.truncated) result.truncated = true;
  if (stopped()) result.stopped = true;
  return result;
}

function count(o: VerifyOptions): number {
  return o.scanCount ?? 1000;
}

function roundDelay(o: VerifyOptions, round: number): number {
  if (typeof o.roundDelayMs === 'function') return o.roundDelayMs(round);
  return o.roundDelayMs ?? 1000 * (round - 1);
}

function emptyReport(o: VerifyOptions): VerifyReport {
  return {
    consistent: true,
    mode: o.mode,
    rounds: 0,
    sampleRate: o.sampleRate,
    ttlToleranceMs: o.ttlToleranceMs,
    units: o.units.map((u) => ({
      unitId: u.unitId,
      sourceDb: u.sourceDb,
      targetDb: u.targetDb,
      keysCompared: 0,
      keysOnTarget: 0,
    })),
    keysCompared: 0,
    keysScannedOnTarget: 0,
    keysPerSecond: 0,
    seconds: 0,
    keysDiffering: 0,
    categories: emptyCategories(),
  };
}

/** ` (cluster, 3 masters: …)` for a cluster side; nothing for a standalone server. */
function layout(side: VerifySide): string {
  return isCluster(side) ? ` (${side.routing.describe()})` : '';
}

/**
 * SCANs one side of a unit, node after node, each on its own connection, and hands the selected keys of
 * each batch to `handle`, BATCHES_IN_FLIGHT batches at a time.
 */
async function forEachBatch(
  openScans: readonly (() => Promise<RawConnection>)[],
  select: (key: Buffer) => boolean,
  scanCount: number,
  stopped: () => boolean,
  handle: (keys: Buffer[]) => Promise<void>,
): Promise<void> {
  for (const openScan of openScans) {
    if (stopped()) return;
    await scanNode(openScan, select, scanCount, stopped, handle);
  }
}

async function scanNode(
  openScan: () => Promise<RawConnection>,
  select: (key: Buffer) => boolean,
  scanCount: number,
  stopped: () => boolean,
  handle: (keys: Buffer[]) => Promise<void>,
): Promise<void> {
  const conn = await openScan();
  const scanner = new KeyScanner(conn, { cursor: '0', count: scanCount, keep: select });
  let failed = false;
  const worker = async () => {
    for (;;) {
      if (failed || stopped()) return;
      let batch: KeyBatch | undefined;
      try {
        batch = await scanner.next();
        if (!batch) return;
        if (batch.keys.length > 0) await handle(batch.keys);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: BATCHES_IN_FLIGHT }, worker));
}

import type { KeyPredicate } from '../commands/key-filter.ts';
import type { FullSyncUnit } from '../fullsync/copy-unit.ts';
import type { ProgressSink } from '../progress/progress-reporter.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';

/** full: values and expiries; length: types and lengths; exists: presence only; off: nothing. */
export type VerifyMode = 'full' | 'length' | 'exists' | 'off';

/** How a key differs. A key may be in two categories at once (a wrong value and a wrong TTL). */
export type DifferenceCategory = 'missing' | 'extra' | 'type' | 'value' | 'ttl';

export const CATEGORIES: readonly DifferenceCategory[] = ['missing', 'extra', 'type', 'value', 'ttl'];

/** One way one key differs, with a one-line explanation (`field "f" differs`, `expires … vs …`). */
export interface Finding {
  category: DifferenceCategory;
  detail: string;
}

export interface VerifyOptions {
  source: RedisEndpoint;
  target: RedisEndpoint;
  /** The dbs to compare, source db → destination db (planVerifyUnits, or the full sync's planUnits). */
  units: readonly FullSyncUnit[];
  /** The task's key selection (makeKeyFilter); redis-dts' own keys are left out whatever it says. */
  keep: KeyPredicate;
  mode: VerifyMode;
  /** 1 = one pass; each further round re-checks only the keys still differing. */
  rounds: number;
  /** Fraction of keys compared, chosen by a hash of the key name so every round picks the same keys. */
  sampleRate: number;
  /** Largest difference between absolute expiry times (and stream delivery times) counted as equal. */
  ttlToleranceMs: number;
  /** Wait before round r (r ≥ 2); default 1000 × (r − 1) ms. */
  roundDelayMs?: number | ((round: number) => number);
  /** Example keys kept per category (default 10). */
  maxExamples?: number;
  /** Differing keys remembered for the next rounds (default 100,000); beyond, they are only counted. */
  maxTrackedKeys?: number;
  /** Keys per SCAN and per pipelined batch (default 1000). */
  scanCount?: number;
  /**
   * Compare DUMP payloads first (equal bytes are equal values). Default: when both servers are of one
   * DUMP family (same product and major.minor, server-versions.ts; Valkey 8 is not Redis 7.2 there);
   * false compares every value as data.
   */
  dumpPayloads?: boolean;
  /** Keys whose MEMORY USAGE exceeds this on either side are compared in pages (default 8 MB). */
  bigKeyBytes?: number;
  /** Estimated reply bytes of one pipelined batch of small keys, per side (default 16 MB). */
  maxBatchBytes?: number;
  progress?: ProgressSink;
  /**
   * Told each key round 1 finds differing (extra keys included), awaited before the scan goes on: the
   * notification reader's repair round copies them again, and its back-pressure slows the scan.
   */
  onDifference?: (unit: FullSyncUnit, key: Buffer) => void | Promise<void>;
  /** Aborting stops after the batches in flight; the report then covers what was compared. */
  signal?: AbortSignal;
}

export interface CategoryReport {
  count: number;
  /** Up to maxExamples keys, printable and with their db: `db0 "user:1"` (`db0→db2 …` when mapped). */
  examples: string[];
  /** What differs, one line per example, in the same order. */
  details: string[];
}

export interface VerifyReport {
  consistent: boolean;
  mode: VerifyMode;
  /** Rounds run: fewer than asked when every difference cleared earlier. */
  rounds: number;
  sampleRate: number;
  ttlToleranceMs: number;
  units: { unitId: string; sourceDb: number; targetDb: number; keysCompared: number; keysOnTarget: number }[];
  /** Source keys compared in round 1 (after filters and sampling). */
  keysCompared: number;
  /** Destination keys looked up on the source in round 1 (the search for extra keys). */
  keysScannedOnTarget: number;
  /** Source keys compared per second in round 1. */
  keysPerSecond: number;
  /** Wall time of every round, delays between rounds included. */
  seconds: number;
  /** Keys that differ after the last round (a key in two categories counts once). */
  keysDiffering: number;
  categories: Record<DifferenceCategory, CategoryReport>;
  /**
   * More keys differed in round 1 than maxTrackedKeys: the excess was counted once and not re-checked,
   * so those counts may include keys that were only being written at the time.
   */
  truncated?: boolean;
  /** The run was stopped (signal) before every key was compared. */
  stopped?: boolean;
}

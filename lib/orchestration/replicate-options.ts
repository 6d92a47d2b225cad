import type { IncrementalProgress } from '../incremental/incremental-types.ts';
import type { KeyspaceWatch } from '../notifications/keyspace-watch.ts';
import type { ProgressSink } from '../progress/progress-reporter.ts';
import type { TaskStore } from '../state/task-store.ts';
import type { SecretValues } from './step-endpoints.ts';

export interface ReplicateOptions {
  store: TaskStore;
  secrets?: SecretValues;
  /** A Lambda window ends here (checkpointed); absent: run until stopped or caught up. */
  deadline?: number;
  progress?: ProgressSink;
  /** Every second, the incremental figures (the Fargate replicator turns them into metrics). */
  onProgress?: (p: IncrementalProgress) => void;
  /** After each sampled verification run: how many keys it found inconsistent (for the metrics). */
  onSampledVerification?: (inconsistentKeys: number) => void;
  /** Aborted: stop cleanly, as the task's stop flag does (SIGTERM of the Fargate task). */
  signal?: AbortSignal;
  /**
   * reader notifications: the subscription CaptureStart opened before the full sync, when this process
   * ran it (a local run). Absent: a fresh subscription and a repair round.
   */
  watch?: KeyspaceWatch;
}

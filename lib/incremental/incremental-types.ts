import type { FilterContext } from '../commands/command-filter.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import type { TargetRouting } from '../redis/target-routing.ts';
import type { HeldLink } from '../replication/held-link.ts';
import type { BigKeyOptions } from './key-recopier.ts';
import type { LagSnapshot } from './lag-meter.ts';
import type { MarkerPosition } from './marker-applier.ts';
import type { SourceSlotMoves } from './source-slot-moves.ts';

// What an incremental sync of one shard is given and what it reports (the readers of its progress
// import these without the sync itself).

export interface IncrementalSyncOptions {
  source: RedisEndpoint;
  target: RedisEndpoint;
  /** A cluster destination's masters: commands go to the node of their slot, each node with its marker. */
  routing?: TargetRouting;
  taskId: string;
  shardId: string;
  /** The source is one master of a cluster: re-copies read one slot per transaction. */
  clusterSource?: boolean;
  /** A cluster shard: where its master is now (after a failover). */
  resolveSource?: () => Promise<RedisEndpoint>;
  filter: FilterContext;
  /** A cluster source: the slot moves between its masters, shared by every shard's sync. */
  slotMoves?: SourceSlotMoves;
  /** Destination db of the marker and its skip hash (one the task writes anyway). */
  markerDb: number;
  /** Where the stream starts when the destination has no marker yet: the offset captured before the full sync. */
  start: { replid: string; offset: number };
  /** Largest stamp of the full sync's chunks (F): the stream up to it is collected, not applied. */
  catchUpBound: number;
  /**
   * The RDB full sync's link, at `start`: without a marker the stream continues on it (catchUpBound is
   * then `start.offset`: the snapshot needs no catch-up).
   */
  heldLink?: HeldLink;
  /** Source keys to copy again before the first marker, with the catch-up's (the RDB's oversized values). */
  dirtyKeys?: { db: number; key: Buffer }[];
  /** Source dbs the full sync copied: where a keyspace-wide change or an unknown db can reach. */
  syncedDbs: number[];
  /**
   * Empties the destination's share of a source db (the whole db; for a cluster shard, the keys of its
   * slots) and copies it again; resolves with the copy's largest stamp.
   */
  resyncDb: (sourceDb: number) => Promise<number>;
  sourceVersion: number;
  /**
   * The destination's redis_version as a number; older than the source's, commands it lacks are
   * rewritten or their keys re-copied (older-target.ts). Absent: not older.
   */
  targetVersion?: number;
  /** Keys too big for the memory budget or one RESTORE: how re-copies read them (KeyRecopier). */
  bigKeys: BigKeyOptions;
  heartbeat?: { prefix: string; intervalMs: number; db: number };
  /** 'caught-up': end once everything written is applied and the source has been quiet for quietMs. */
  until: 'stopped' | 'caught-up';
  quietMs?: number;
  /** End (checkpointed) when Date.now() passes this: a Lambda window. */
  deadline?: number;
  shouldStop?: () => boolean;
  onProgress?: (p: IncrementalProgress) => void;
  log?: (message: string) => void;
  maxBatchBytes?: number;
  maxBatchCommands?: number;
  maxPendingBatches?: number;
}

export type IncrementalPhase = 'catch-up' | 're-copy' | 'incremental';

export interface IncrementalProgress extends LagSnapshot {
  phase: IncrementalPhase;
  sourceOffset: number | undefined;
  commandsApplied: number;
  commandsSkipped: number;
  keysRecopied: number;
  dbsResynced: number;
  reconnects: number;
}

export interface IncrementalOutcome {
  ended: 'stopped' | 'caught-up' | 'deadline';
  position: MarkerPosition;
  progress: IncrementalProgress;
}

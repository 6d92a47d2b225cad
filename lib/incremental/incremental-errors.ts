import { DtsError } from '../errors.ts';

/**
 * FLUSHDB/FLUSHALL on a cluster source reach every master's stream, each meaning "this master's slots":
 * replaying one on the destination would empty other shards' keys too, and emptying only one shard's
 * slots there is not built.
 */
export function keyspaceOnClusterShard(shardId: string, what: string): DtsError {
  return new DtsError(
    'KEYSPACE_ON_CLUSTER_SOURCE',
    `the cluster source's shard ${shardId} ran ${what.toUpperCase()} during the task; emptying only that ` +
      "shard's slots on the destination is not built, so the change cannot be replayed (nothing of it was applied)",
    'run the task again with a fresh full sync (empty the destination first, or use existingKeys "overwrite")',
  );
}

export function unsupported(message: string): DtsError {
  return new DtsError(
    'UNSUPPORTED_COMMAND',
    message,
    'exclude the keys or db it writes from the task (keyFilter, dbs), or run that workload after the migration',
  );
}

import { DtsError } from '../errors.ts';

/**
 * A keyspace-wide command on a cluster source that its shard cannot follow. FLUSHDB/FLUSHALL are
 * followed (the shard's slots are emptied on the destination, slot-flush.ts); SWAPDB, which a cluster
 * refuses, is not, nor a flush where no slot emptying was provided.
 */
export function keyspaceOnClusterShard(shardId: string, what: string): DtsError {
  return new DtsError(
    'KEYSPACE_ON_CLUSTER_SOURCE',
    `the cluster source's shard ${shardId} ran ${what.toUpperCase()} during the task, which cannot be ` +
      "followed on one shard's slots (nothing of it was applied)",
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

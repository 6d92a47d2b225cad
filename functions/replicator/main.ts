/**
 * Entry of the Fargate replicator (the Incremental state's `ecs:runTask.sync`). It reads the task id
 * from REDIS_DTS_TASK_ID, the spec from the task table, and passwords from the ECS secrets
 * REDIS_DTS_SOURCE_PASSWORD / REDIS_DTS_TARGET_PASSWORD. Until the incremental core exists it exits
 * non-zero, which fails the state after its retries and so the task, with this message.
 */
process.stderr.write(
  'error: incremental sync is not built yet\nfix: run a full-only task (syncType "full")\n',
);
process.exitCode = 2;

import { makeKeyFilter } from '../commands/key-filter.ts';
import { KeyspaceWatch } from '../notifications/keyspace-watch.ts';
import { type ProgressSink, silentProgress } from '../progress/progress-reporter.ts';
import { connectAdmin, serverInfo } from '../redis/admin-client.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import type { CaptureStartResult } from '../replication/capture-start.ts';
import type { TaskSpec } from '../task/spec.ts';
import { shardMaster, sourceShards } from './source-shards.ts';
import { stepEndpoints } from './step-endpoints.ts';
import type { TaskStepInput } from './step-types.ts';

/**
 * The notification reader's subscription for a task, on every source shard: the selected dbs (or every
 * db until the full sync's plan is known), the task's key filter, and heartbeat probes in `heartbeatDb`
 * (absent: the lowest selected db, or the lowest db holding keys now, so the probe never makes an empty
 * db look selected).
 */
export async function startKeyspaceWatch(o: {
  spec: TaskSpec;
  taskId: string;
  source: RedisEndpoint;
  heartbeatDb?: number;
  log: (m: string) => void;
}): Promise<KeyspaceWatch> {
  const { spec } = o;
  const shards = await sourceShards(o.source);
  const cluster = shards.length > 1 || shards[0]?.tag !== undefined;
  const hb = spec.incremental.heartbeat;
  return KeyspaceWatch.start({
    taskId: o.taskId,
    shards: shards.map((s) => ({
      ...s,
      ...(cluster ? { resolve: () => shardMaster(s.shardId, [s.endpoint, o.source]) } : {}),
    })),
    ...(spec.dbs ? { dbs: spec.dbs } : {}),
    keep: makeKeyFilter(spec.keyFilter),
    ...(hb.enabled
      ? {
          heartbeat: {
            prefix: hb.prefix,
            intervalMs: hb.intervalMs,
            db: o.heartbeatDb ?? (cluster ? 0 : await probeDb(spec, o.source)),
          },
        }
      : {}),
    log: o.log,
  });
}

async function probeDb(spec: TaskSpec, source: RedisEndpoint): Promise<number> {
  if (spec.dbs) return Math.min(...spec.dbs);
  const admin = await connectAdmin(source);
  try {
    const dbs = Object.keys((await serverInfo(admin)).keyspace).map(Number);
    return dbs.length > 0 ? Math.min(...dbs) : 0;
  } finally {
    await admin.quit().catch(() => admin.disconnect());
  }
}

/**
 * CaptureStart's subscription in a process that runs the whole task (a local run): opened before the
 * full sync so the writes made while copying are marked. A task captured by an earlier run was not
 * watched in between, and a destination of syncType incremental was never compared: both start with a
 * repair round.
 */
export async function holdKeyspaceWatch(
  input: TaskStepInput,
  via: CaptureStartResult['via'],
  progress: ProgressSink = silentProgress,
): Promise<KeyspaceWatch> {
  const { spec, taskId } = input;
  const watch = await startKeyspaceWatch({
    spec,
    taskId,
    source: stepEndpoints(spec).source,
    log: (m) => progress.log(m, { phase: 'capture-start', reader: 'notifications' }),
  });
  if (via === 'checkpoint') {
    watch.requestRepair('the task was restarted: events while it was not running are lost');
  } else if (spec.syncType === 'incremental') {
    watch.requestRepair('syncType incremental: the destination is compared with the source first');
  } else {
    watch.coversFullSync = true;
  }
  return watch;
}

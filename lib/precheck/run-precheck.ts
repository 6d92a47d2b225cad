import { isDtsError } from '../errors.ts';
import { planUnits } from '../fullsync/plan-units.ts';
import { numericDbMap } from '../fullsync/unit-checkpoint.ts';
import type { ServerInfo } from '../redis/admin-client.ts';
import { describeTopology } from '../redis/cluster-topology.ts';
import type { TaskSpec } from '../task/spec.ts';
import { bulkLimit } from './bulk-limit.ts';
import { CONNECT_TITLES, connectSide } from './connect-side.ts';
import { dbsExist } from './dbs-exist.ts';
import { dumpCompat } from './dump-compat.ts';
import { evictionPolicy } from './eviction-policy.ts';
import { existingKeysCheck } from './existing-keys-check.ts';
import { fullSyncReaderCheck } from './full-sync-reader-check.ts';
import { heartbeatWritable } from './heartbeat-writable.ts';
import { modulesCheck } from './modules.ts';
import { notifyKeyspaceEvents } from './notify-keyspace-events.ts';
import { closeSide } from './open-node.ts';
import { psyncPermission } from './psync-permission.ts';
import { replBacklog } from './repl-backlog.ts';
import { sameInstance } from './same-instance.ts';
import { addressOf, productVersion } from './server-facts.ts';
import { targetMemory } from './target-memory.ts';
import { targetWritable } from './target-writable.ts';
import { sourceTopology, targetTopology } from './topology-items.ts';
import type {
  DbRoute,
  PrecheckCheck,
  PrecheckContext,
  PrecheckItem,
  PrecheckReport,
  PrecheckServerSummary,
  PrecheckSide,
} from './types.ts';

export interface RunPrecheckOptions {
  /** Secrets Manager values of passwordSecretArn, resolved by the AWS handler. */
  secretValues?: { source?: string; target?: string };
  /** How long to watch the source's write rate for the backlog estimate (default 1000). */
  sampleWriteRateMs?: number;
}

/** The items after the two connections, in the order of the report. */
export const PRECHECKS: readonly PrecheckCheck[] = [
  targetWritable,
  sameInstance,
  dumpCompat,
  bulkLimit,
  targetMemory,
  evictionPolicy,
  dbsExist,
  existingKeysCheck,
  psyncPermission,
  notifyKeyspaceEvents,
  replBacklog,
  fullSyncReaderCheck,
  modulesCheck,
  sourceTopology,
  targetTopology,
  heartbeatWritable,
];

/**
 * Checks that a task can run before it writes anything: connections, permissions, versions, memory,
 * existing keys, replication. Never throws for what it finds: a failed connection or command is a
 * Failed item with its cause and fix, and the checks that needed that connection are skipped.
 */
export async function runPrecheck(spec: TaskSpec, opts: RunPrecheckOptions = {}): Promise<PrecheckReport> {
  const [src, dst] = await Promise.all([
    connectSide(spec, 'source', opts.secretValues?.source),
    connectSide(spec, 'target', opts.secretValues?.target),
  ]);
  const ctx: PrecheckContext = {
    spec,
    source: src.side,
    target: dst.side,
    routes: src.side ? routesOf(spec, src.side) : [],
    sampleWriteRateMs: opts.sampleWriteRateMs ?? 1000,
  };
  const items: PrecheckItem[] = [src.item, dst.item];
  try {
    for (const check of PRECHECKS) {
      if (check.listedFor?.(spec) === false) continue;
      items.push(await runCheck(check, ctx));
    }
  } finally {
    if (ctx.source) closeSide(ctx.source);
    if (ctx.target) closeSide(ctx.target);
  }
  return {
    items,
    fullSyncReader: ctx.fullSyncReader ?? (spec.fullSync.reader === 'rdb' ? 'rdb' : 'scan'),
    status: items.some((i) => i.status === 'failed')
      ? 'failed'
      : items.some((i) => i.status === 'warning')
        ? 'warning'
        : 'passed',
    ...(ctx.source
      ? {
          source: summary(
            ctx.source,
            ctx.routes.map((r) => r.sourceDb),
          ),
        }
      : {}),
    ...(ctx.target
      ? {
          target: summary(
            ctx.target,
            ctx.routes.map((r) => r.targetDb),
          ),
        }
      : {}),
  };
}

async function runCheck(check: PrecheckCheck, ctx: PrecheckContext): Promise<PrecheckItem> {
  const { id, title } = check;
  const notApplicable = check.notApplicable?.(ctx.spec);
  if (notApplicable) return { id, title, status: 'skipped', detail: notApplicable };
  const down = check.needs.find((role) => !ctx[role]);
  if (down) {
    return {
      id,
      title,
      status: 'skipped',
      detail: `needs the ${down === 'target' ? 'destination' : 'source'}, which could not be checked (see '${CONNECT_TITLES[down]}')`,
    };
  }
  const unmapped = check.seedOnly ? undefined : check.needs.find((role) => ctx[role]?.layoutError);
  if (unmapped) {
    const which = unmapped === 'target' ? 'destination' : 'source';
    return {
      id,
      title,
      status: 'skipped',
      detail: `needs the ${which} cluster's layout, which could not be read (see '${unmapped === 'target' ? targetTopology.title : sourceTopology.title}')`,
    };
  }
  try {
    return { id, title, ...(await check.run(ctx)) };
  } catch (e) {
    if (isDtsError(e)) return { id, title, status: 'failed', detail: e.message, fix: e.fix };
    return {
      id,
      title,
      status: 'failed',
      detail: `the check itself failed (a bug in redis-dts): ${(e as Error)?.message ?? String(e)}`,
      fix: 'report this with the output of the precheck; the other items are still valid',
    };
  }
}

/** The dbs as the full sync will plan them, so the precheck looks where the copy will write. */
function routesOf(spec: TaskSpec, source: PrecheckSide): DbRoute[] {
  const dbMap = numericDbMap(spec.dbMap);
  return planUnits({ keyspace: keyspaceOf(source), dbs: spec.dbs, dbMap }).map((u) => ({
    sourceDb: u.sourceDb,
    targetDb: u.targetDb,
  }));
}

/** A cluster's keys are spread over its masters (the seed alone may hold none of them). */
function keyspaceOf(side: PrecheckSide): ServerInfo['keyspace'] {
  if (!side.masters) return side.info.keyspace;
  const total: ServerInfo['keyspace'] = {};
  for (const m of side.masters) {
    for (const [db, { keys, expires }] of Object.entries(m.info.keyspace)) {
      const sum = total[Number(db)] ?? { keys: 0, expires: 0 };
      total[Number(db)] = { keys: sum.keys + keys, expires: sum.expires + expires };
    }
  }
  return total;
}

function summary(side: PrecheckSide, dbs: number[]): PrecheckServerSummary {
  return {
    address: addressOf(side.ep),
    version: productVersion(side.fields),
    role: side.info.role,
    clusterEnabled: side.info.clusterEnabled,
    usedMemory: side.info.usedMemory,
    maxmemory: side.info.maxmemory,
    dbs,
    ...(side.topology ? { layout: describeTopology(side.topology) } : {}),
  };
}

import { isDtsError } from '../errors.ts';
import { planUnits } from '../fullsync/plan-units.ts';
import { numericDbMap } from '../fullsync/unit-checkpoint.ts';
import type { TaskSpec } from '../task/spec.ts';
import { clusterTarget } from './cluster-target.ts';
import { CONNECT_TITLES, connectSide } from './connect-side.ts';
import { dbsExist } from './dbs-exist.ts';
import { dumpCompat } from './dump-compat.ts';
import { evictionPolicy } from './eviction-policy.ts';
import { existingKeysCheck } from './existing-keys-check.ts';
import { heartbeatWritable } from './heartbeat-writable.ts';
import { modulesCheck } from './modules.ts';
import { psyncPermission } from './psync-permission.ts';
import { replBacklog } from './repl-backlog.ts';
import { sameInstance } from './same-instance.ts';
import { addressOf, productVersion } from './server-facts.ts';
import { targetMemory } from './target-memory.ts';
import { targetWritable } from './target-writable.ts';
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
  targetMemory,
  evictionPolicy,
  dbsExist,
  existingKeysCheck,
  psyncPermission,
  replBacklog,
  modulesCheck,
  clusterTarget,
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
    for (const check of PRECHECKS) items.push(await runCheck(check, ctx));
  } finally {
    ctx.source?.client.disconnect();
    ctx.target?.client.disconnect();
  }
  return {
    items,
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
  return planUnits({ keyspace: source.info.keyspace, dbs: spec.dbs, dbMap }).map((u) => ({
    sourceDb: u.sourceDb,
    targetDb: u.targetDb,
  }));
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
  };
}

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { classifyAdminError, parseInfo } from '../redis/admin-client.ts';
import { combineNodeResults } from './cluster-nodes.ts';
import { addressOf, formatBytes, plural } from './server-facts.ts';
import { type CheckResult, nodesOf, type PrecheckCheck, type PrecheckSide, sideOf } from './types.ts';

/** A deliberately low full sync speed, so the estimate errs towards a larger backlog. */
export const ESTIMATED_KEYS_PER_SECOND = 100_000;
/** Even without a full sync, the backlog must outlast a restart of the replicator. */
const MIN_WINDOW_S = 60;
const SAFETY = 2;
const MIB = 1024 * 1024;

export const replBacklog: PrecheckCheck = {
  id: 'repl-backlog',
  title: 'Source replication backlog',
  needs: ['source'],
  notApplicable: (spec) =>
    spec.syncType === 'full'
      ? 'syncType full does not replicate, so the backlog is not used'
      : spec.incremental.reader === 'notifications'
        ? 'incremental.reader notifications reads keyspace events, not the backlog'
        : undefined,
  async run(ctx) {
    const source = sideOf(ctx, 'source');
    const nodes = nodesOf(source);
    // The first sample was taken at connect time, so the wait overlaps the checks in between.
    const waited = performance.now() - Math.max(...nodes.map((n) => n.fieldsAt));
    if (waited < ctx.sampleWriteRateMs) await sleep(ctx.sampleWriteRateMs - waited);

    // Summed over a cluster's masters as if they were copied one after another: a longer window, a
    // larger backlog, the safe side whatever order the full sync takes them in.
    const keys = nodes.reduce(
      (n, node) => n + ctx.routes.reduce((k, r) => k + (node.info.keyspace[r.sourceDb]?.keys ?? 0), 0),
      0,
    );
    const fullSyncS = ctx.spec.syncType === 'incremental' ? 0 : keys / ESTIMATED_KEYS_PER_SECOND;
    const windowS = Math.max(fullSyncS, MIN_WINDOW_S);
    const window =
      ctx.spec.syncType === 'incremental'
        ? `no full sync; at least ${MIN_WINDOW_S} s for a reconnect`
        : `full sync of ${plural(keys, 'key')} at a conservative ` +
          `${ESTIMATED_KEYS_PER_SECOND.toLocaleString('en-US')} keys/s: ${fullSyncS.toFixed(1)} s; ` +
          `at least ${MIN_WINDOW_S} s for a reconnect`;

    if (!source.topology) {
      const m = await measure(source, windowS);
      return judge(m, `${m.sizing} (${window})`);
    }
    // One PSYNC stream per master: each master's backlog must cover its own writes.
    const results: { node: PrecheckSide; m: BacklogSample; result: CheckResult }[] = [];
    for (const node of nodes) {
      const m = await measure(node, windowS);
      results.push({ node, m, result: judge(m, `${m.sizing} (${window})`) });
    }
    return combineNodeResults(
      results,
      () =>
        `each master's backlog covers its own writes × ${windowS.toFixed(0)} s × ${SAFETY} (${window}): ` +
        results
          .map(
            ({ node, m }) =>
              `${addressOf(node.ep)} repl-backlog-size ${formatBytes(m.size)} for ${formatBytes(m.needed)} ` +
              `needed (${formatBytes(Math.round(m.rate))}/s by ${m.field})`,
          )
          .join(', '),
    );
  },
};

interface BacklogSample {
  size: number;
  needed: number;
  rate: number;
  field: string;
  /** `X needed: R/s of writes (field over S s) × W s × 2` */
  sizing: string;
}

/** One node's write rate since its connect-time INFO, and the backlog that rate needs over `windowS`. */
async function measure(node: PrecheckSide, windowS: number): Promise<BacklogSample> {
  let text: string;
  try {
    text = await node.client.info();
  } catch (e) {
    throw classifyAdminError(node.client, e, 'INFO');
  }
  const now = performance.now();
  const before = node.fields;
  const after = parseInfo(text);
  const seconds = (now - node.fieldsAt) / 1000;

  // master_repl_offset only moves while a backlog exists (a replica is or was attached); without
  // one, the bytes of incoming commands stand in (reads included: an overestimate).
  const byOffset = after.repl_backlog_active === '1' && before.repl_backlog_active === '1';
  const field = byOffset ? 'master_repl_offset' : 'total_net_input_bytes';
  // Input bytes include the precheck's own commands on this connection (DUMP sample, probes, this INFO).
  const own = byOffset ? 0 : node.sentBytes() - node.fieldsSent;
  const delta = Math.max(0, Number(after[field]) - Number(before[field]) - own || 0);
  const rate = seconds > 0 ? delta / seconds : 0;
  const needed = Math.ceil(rate * windowS * SAFETY);
  const size = Number(after.repl_backlog_size ?? (await node.config('repl-backlog-size')));
  const sizing =
    `${formatBytes(needed)} needed: ${formatBytes(Math.round(rate))}/s of writes (${field} over ` +
    `${seconds.toFixed(1)} s) × ${windowS.toFixed(0)} s × ${SAFETY}`;
  return { size, needed, rate, field, sizing };
}

function judge({ size, needed }: BacklogSample, sizing: string): CheckResult {
  if (!Number.isFinite(size) || size <= 0) {
    return {
      status: 'warning',
      detail: `the source reports no repl-backlog-size; ${sizing}`,
      fix: `make sure repl-backlog-size is at least ${formatBytes(needed)} on the source`,
    };
  }
  if (size < needed) {
    const suggest = Math.ceil(needed / MIB) * MIB;
    return {
      status: 'warning',
      detail:
        `repl-backlog-size ${formatBytes(size)} is below the ${sizing}: the source may overwrite changes ` +
        'made during the full sync before incremental sync reads them, and the task must start over',
      fix: `on the source: CONFIG SET repl-backlog-size ${suggest} (${formatBytes(suggest)}; also in redis.conf or the parameter group to keep it)`,
    };
  }
  return { status: 'passed', detail: `repl-backlog-size ${formatBytes(size)} covers the ${sizing}` };
}

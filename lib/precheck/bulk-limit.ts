import { DEFAULT_PROTO_MAX_BULK_LEN } from '../fullsync/oversized-key-copier.ts';
import { combineNodeResults } from './cluster-nodes.ts';
import { addressOf, formatBytes } from './server-facts.ts';
import { type CheckResult, nodesOf, type PrecheckCheck, type PrecheckSide, sideOf } from './types.ts';

/**
 * The destination's proto-max-bulk-len decides which values one RESTORE can carry and which are copied
 * in parts. CONFIG GET reads it; a managed service hides CONFIG, so the full sync then assumes Redis'
 * default, and this item says so instead of leaving the assumption silent.
 */
export const bulkLimit: PrecheckCheck = {
  id: 'target-bulk-limit',
  title: 'Destination bulk limit (proto-max-bulk-len)',
  needs: ['target'],
  async run(ctx) {
    const target = sideOf(ctx, 'target');
    const masters = nodesOf(target);
    const results: { node: PrecheckSide; result: CheckResult }[] = [];
    for (const node of masters) results.push({ node, result: await judgeLimit(node) });
    if (masters.length === 1) return results[0]!.result;
    return combineNodeResults(
      results,
      () => `every master (${masters.map((m) => addressOf(m.ep)).join(', ')}): ${results[0]!.result.detail}`,
    );
  },
};

async function judgeLimit(node: PrecheckSide): Promise<CheckResult> {
  const value = Number(await node.config('proto-max-bulk-len'));
  if (Number.isFinite(value) && value > 0) {
    return {
      status: 'passed',
      detail: `proto-max-bulk-len ${formatBytes(value)}: a value whose DUMP is larger is copied in parts`,
    };
  }
  const assumed = formatBytes(DEFAULT_PROTO_MAX_BULK_LEN);
  return {
    status: 'warning',
    detail:
      'CONFIG GET is not available on the destination (managed services such as ElastiCache and MemoryDB ' +
      `disable it), so its proto-max-bulk-len is unknown: redis-dts assumes Redis' default ${assumed}, ` +
      'and copies larger values in parts; if the real limit is lower, a value above it is refused by the ' +
      'destination and the sync stops naming it',
    fix:
      `check proto-max-bulk-len in the destination's parameter group (console: ElastiCache or MemoryDB → ` +
      `Parameter groups); it is ${assumed} unless changed. If it is lower, raise it for the migration`,
  };
}

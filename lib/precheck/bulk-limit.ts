import { DEFAULT_PROTO_MAX_BULK_LEN } from '../fullsync/oversized-key-copier.ts';
import { combineNodeResults } from './cluster-nodes.ts';
import { addressOf, formatBytes } from './server-facts.ts';
import { type CheckResult, nodesOf, type PrecheckCheck, type PrecheckSide, sideOf } from './types.ts';

/**
 * The destination's proto-max-bulk-len decides which values one RESTORE can carry and which are copied
 * in parts. CONFIG GET reads it; a managed service hides CONFIG, so the full sync then assumes Redis'
 * default, and this item says so instead of leaving the assumption silent.
 *
 * The master's link is also exempt from the limit (lib/commands/replica-relaxations.ts): a source with a
 * larger one can grow a string past the destination's, and then no client may APPEND to it, SETRANGE or
 * SETBIT it there. Commands whose arguments show it are re-copied; an APPEND does not show the length it
 * reaches, which is what the "below the source's" warning is about.
 */
export const bulkLimit: PrecheckCheck = {
  id: 'target-bulk-limit',
  title: 'Destination bulk limit (proto-max-bulk-len)',
  needs: ['source', 'target'],
  async run(ctx) {
    const source = await limitOf(sideOf(ctx, 'source'));
    const target = sideOf(ctx, 'target');
    const masters = nodesOf(target);
    const results: { node: PrecheckSide; result: CheckResult }[] = [];
    for (const node of masters) results.push({ node, result: await judgeLimit(node, source) });
    if (masters.length === 1) return results[0]!.result;
    return combineNodeResults(
      results,
      () => `every master (${masters.map((m) => addressOf(m.ep)).join(', ')}): ${results[0]!.result.detail}`,
    );
  },
};

async function judgeLimit(node: PrecheckSide, source: number | undefined): Promise<CheckResult> {
  const value = await limitOf(node);
  const assumed = formatBytes(DEFAULT_PROTO_MAX_BULK_LEN);
  if (value === undefined) {
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
  const sourceText =
    source === undefined
      ? `the source's is hidden (CONFIG GET refused), taken as the default ${assumed}`
      : `the source's is ${formatBytes(source)}`;
  if (value < (source ?? DEFAULT_PROTO_MAX_BULK_LEN)) {
    return {
      status: 'warning',
      detail:
        `the destination's proto-max-bulk-len is ${formatBytes(value)}, below the source's (${sourceText}): a string ` +
        "the source grows past the destination's limit is copied again when the command shows it (SET, SETRANGE, " +
        'SETBIT, BITFIELD), but an APPEND to such a string is refused there and stops the task',
      fix: "raise proto-max-bulk-len on the destination to at least the source's (CONFIG SET proto-max-bulk-len, or the provider's parameter group)",
    };
  }
  return {
    status: 'passed',
    detail: `proto-max-bulk-len ${formatBytes(value)}, not below the source's (${sourceText}): a value whose DUMP is larger is copied in parts`,
  };
}

async function limitOf(side: PrecheckSide): Promise<number | undefined> {
  const value = await side.config('proto-max-bulk-len');
  const n = Number(value);
  return value !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
}

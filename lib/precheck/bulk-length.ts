import { addressOf } from './server-facts.ts';
import { type CheckResult, nodesOf, type PrecheckCheck, type PrecheckSide, sideOf } from './types.ts';

/** Redis' default proto-max-bulk-len, which a server that hides CONFIG most likely keeps. */
const DEFAULT_BULK_LEN = 512 * 1024 * 1024;

/**
 * The master's link is exempt from proto-max-bulk-len (lib/commands/replica-relaxations.ts): a source
 * with a larger limit can grow a string past the destination's, and then no client may APPEND to it,
 * SETRANGE or SETBIT it there. Commands whose arguments show it are re-copied; an APPEND does not show
 * the length it reaches, which is what this item warns about.
 */
export const bulkLength: PrecheckCheck = {
  id: 'target-bulk-len',
  title: 'Largest value the destination accepts',
  needs: ['source', 'target'],
  async run(ctx) {
    const source = await limitOf(sideOf(ctx, 'source'));
    const targets = await Promise.all(
      nodesOf(sideOf(ctx, 'target')).map(async (n) => ({ n, limit: await limitOf(n) })),
    );
    const sourceLimit = source ?? DEFAULT_BULK_LEN;
    const low = targets.filter((t) => (t.limit ?? DEFAULT_BULK_LEN) < sourceLimit);
    const sourceText =
      source === undefined
        ? `the source's is hidden (CONFIG GET refused), taken as the default ${mb(DEFAULT_BULK_LEN)}`
        : `the source's is ${mb(source)}`;
    if (low.length === 0) {
      return {
        status: 'passed',
        detail: `the destination's proto-max-bulk-len is ${limitsText(targets)}, not below the source's (${sourceText})`,
      };
    }
    return lowLimit(low, sourceText);
  },
};

function lowLimit(low: { n: PrecheckSide; limit: number | undefined }[], sourceText: string): CheckResult {
  return {
    status: 'warning',
    detail:
      `the destination's proto-max-bulk-len is ${limitsText(low)}, below the source's (${sourceText}): a string the source grows past the destination's ` +
      'limit is copied again when the command shows it (SET, SETRANGE, SETBIT, BITFIELD), but an APPEND to such a ' +
      'string is refused there and stops the task',
    fix: "raise proto-max-bulk-len on the destination to at least the source's (CONFIG SET proto-max-bulk-len, or the provider's parameter group)",
  };
}

function limitsText(targets: { n: PrecheckSide; limit: number | undefined }[]): string {
  return targets
    .map(
      (t) =>
        `${t.limit === undefined ? 'hidden (taken as the default)' : mb(t.limit)} on ${addressOf(t.n.ep)}`,
    )
    .join(', ');
}

async function limitOf(side: PrecheckSide): Promise<number | undefined> {
  const value = await side.config('proto-max-bulk-len');
  const n = Number(value);
  return value !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
}

function mb(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MB` : `${bytes} bytes`;
}

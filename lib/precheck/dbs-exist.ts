import { dbAvailability } from './db-availability.ts';
import { listWords } from './server-facts.ts';
import { type CheckResult, type PrecheckCheck, sideOf } from './types.ts';

export const dbsExist: PrecheckCheck = {
  id: 'dbs-exist',
  title: 'Selected databases exist',
  needs: ['source', 'target'],
  // A cluster has db 0 only, which the seed's cluster_enabled already says.
  seedOnly: true,
  async run(ctx): Promise<CheckResult> {
    if (ctx.routes.length === 0) {
      return {
        status: 'passed',
        detail: 'no dbs are selected: the source has no keys and no --dbs were given',
      };
    }
    const sourceDbs = ctx.routes.map((r) => r.sourceDb);
    const targetDbs = ctx.routes.map((r) => r.targetDb);
    const src = await dbAvailability(sideOf(ctx, 'source'), sourceDbs);
    const dst = await dbAvailability(sideOf(ctx, 'target'), targetDbs);
    const problems: string[] = [];
    if (src.missing.length > 0) {
      problems.push(`the source has no ${dbWord(src.missing)} (${src.basis})`);
    }
    if (dst.missing.length > 0) {
      const from = ctx.routes.filter((r) => dst.missing.includes(r.targetDb));
      const mapped = from.some((r) => r.sourceDb !== r.targetDb)
        ? ` (mapped from source ${from.map((r) => `db ${r.sourceDb}`).join(', ')})`
        : '';
      problems.push(`the destination has no ${dbWord(dst.missing)}${mapped} (${dst.basis})`);
    }
    if (problems.length > 0) {
      return {
        status: 'failed',
        detail: problems.join('; '),
        fix: "select dbs that exist on both sides with --dbs, or map them to existing destination dbs with --db-map (raise 'databases' in the server's config to add dbs; a cluster has db 0 only)",
      };
    }
    return {
      status: 'passed',
      detail:
        `source ${dbWord(sourceDbs)} → destination ${dbWord(targetDbs)} ` +
        `(source ${src.basis}; destination ${dst.basis})`,
    };
  },
};

function dbWord(dbs: readonly number[]): string {
  const unique = [...new Set(dbs)];
  return `${unique.length === 1 ? 'db' : 'dbs'} ${listWords(unique)}`;
}

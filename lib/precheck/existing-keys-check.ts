import { existingKeys } from '../fullsync/existing-keys.ts';
import { classifyAdminError } from '../redis/admin-client.ts';
import { dbAvailability } from './db-availability.ts';
import { addressOf, plural } from './server-facts.ts';
import { nodesOf, type PrecheckCheck, sideOf } from './types.ts';

/** Key names shown in the report, over all dbs together. */
const NAMED = 10;

export const existingKeysCheck: PrecheckCheck = {
  id: 'existing-keys',
  title: 'Existing keys in the destination',
  needs: ['source', 'target'],
  async run(ctx) {
    const target = sideOf(ctx, 'target');
    const mode = ctx.spec.existingKeys;
    // Missing dbs are the dbs-exist item's finding; SELECT on them would only fail again here.
    const wanted = [...new Set(ctx.routes.map((r) => r.targetDb))];
    const { missing } = await dbAvailability(target, wanted);
    const dbs = wanted.filter((db) => !missing.includes(db)).sort((a, b) => a - b);
    if (dbs.length === 0) {
      return {
        status: 'passed',
        detail: 'no destination db to look at (no dbs are selected, or none exists)',
      };
    }
    // A cluster's keys are spread over its masters: every master's db 0 is looked at.
    const found: { where: string; db: number; count: number; examples: string[] }[] = [];
    for (const node of nodesOf(target)) {
      try {
        const on = target.topology ? `${addressOf(node.ep)} ` : '';
        for (const f of await existingKeys(node.client, dbs)) found.push({ ...f, where: on });
      } catch (e) {
        throw classifyAdminError(node.client, e, 'DBSIZE/SCAN');
      }
    }
    const where = target.topology
      ? `destination db 0 on every master (${nodesOf(target)
          .map((n) => addressOf(n.ep))
          .join(', ')})`
      : `destination ${dbs.length === 1 ? 'db' : 'dbs'} ${dbs.join(', ')}`;
    if (found.length === 0) return { status: 'passed', detail: `${where}: empty` };

    const total = found.reduce((n, f) => n + f.count, 0);
    const perDb = found.map((f) => `${f.where}db ${f.db} has ${plural(f.count, 'key')}`).join(', ');
    const names = found.flatMap((f) => f.examples).slice(0, NAMED);
    const more = total > names.length ? ', …' : '';
    const holding = `${perDb} (${names.join(', ')}${more})`;
    if (mode === 'overwrite') {
      return {
        status: 'warning',
        detail:
          `${holding}: with --existing-keys overwrite, keys the source also has are replaced and the others ` +
          'stay, so the destination will hold keys the source does not',
        fix: 'empty those dbs first (FLUSHDB) if the destination must equal the source, or map to empty dbs with --db-map',
      };
    }
    return {
      status: 'failed',
      detail: `${holding}: --existing-keys block refuses a destination that holds keys`,
      fix: 'empty those dbs, map to empty ones with --db-map, or pass --existing-keys overwrite to replace keys of the same name',
    };
  },
};

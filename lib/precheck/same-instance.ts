import { addressOf, listWords } from './server-facts.ts';
import { type PrecheckCheck, type PrecheckSide, sideOf } from './types.ts';

export const sameInstance: PrecheckCheck = {
  id: 'same-instance',
  title: 'Source and destination are different servers',
  needs: ['source', 'target'],
  // Compares the seeds (and, where both layouts were read, the clusters' masters).
  seedOnly: true,
  async run(ctx) {
    const source = sideOf(ctx, 'source');
    const target = sideOf(ctx, 'target');
    const same = identify(source, target);
    if (!same) {
      return {
        status: 'passed',
        detail: `different servers (run_id ${short(source.fields.run_id)} and ${short(target.fields.run_id)})`,
      };
    }
    const onto = ctx.routes.filter((r) => r.sourceDb === r.targetDb).map((r) => r.sourceDb);
    // Without an explicit db list, incremental sync follows every db, and each db that dbMap leaves
    // alone would be replayed into itself: its own writes would come back to it forever.
    const everyDb = ctx.spec.dbs === undefined && ctx.spec.syncType !== 'full';
    if (onto.length > 0 || everyDb) {
      const what =
        onto.length > 0
          ? `db ${listWords(onto)} would be copied onto itself`
          : 'no dbs are selected, so incremental sync would replay every db into itself';
      return {
        status: 'failed',
        detail: `source and destination are the same server (${same}): ${what}`,
        fix: 'point the destination at another server, or select dbs with --dbs and map each one to a different db with --db-map (e.g. --dbs 0 --db-map 0:1)',
      };
    }
    const moves = ctx.routes.map((r) => `${r.sourceDb}→${r.targetDb}`);
    return {
      status: 'passed',
      detail:
        `source and destination are the same server (${same}); allowed because every selected db is written ` +
        `into a different db${moves.length > 0 ? ` (${moves.join(', ')})` : ''}`,
    };
  },
};

/** How we know the two connections reach one server, or undefined when they do not. */
function identify(source: PrecheckSide, target: PrecheckSide): string | undefined {
  // Two URLs can name different nodes of one cluster: their run_ids differ, their masters do not.
  if (source.topology && target.topology) {
    const ids = new Set(source.topology.masters.map((m) => m.id));
    const shared = target.topology.masters.find((m) => ids.has(m.id));
    return shared ? `same cluster: master node ${short(shared.id)} is in both` : undefined;
  }
  const a = source.fields.run_id;
  const b = target.fields.run_id;
  if (a && b) return a === b ? `same run_id ${short(a)}` : undefined;
  // A server that hides run_id (some proxies) can only be compared by address.
  const addr = addressOf(source.ep);
  return addr === addressOf(target.ep) ? `same address ${addr}` : undefined;
}

function short(runId: string | undefined): string {
  return runId ? `${runId.slice(0, 8)}…` : 'unknown';
}

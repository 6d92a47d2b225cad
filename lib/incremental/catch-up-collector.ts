import { lookupCommand } from '../commands/catalogue.ts';
import { type FilterContext, filterCommand } from '../commands/command-filter.ts';
import { locateArg } from '../commands/key-extraction.ts';
import type { DirtySet } from './dirty-set.ts';
import { keyspaceOnClusterShard, unsupported } from './incremental-errors.ts';
import { ALL_NODES, type ApplyCommand } from './marker-applier.ts';

/** What the stream of one shard reads its commands against. */
export interface StreamScope {
  filter: FilterContext;
  /** Source dbs the full sync copied: where a keyspace-wide change or an unknown db can reach. */
  syncedDbs: number[];
  /** The source is one master of a cluster (only db 0; FLUSHDB/FLUSHALL mean its slots). */
  clusterSource?: boolean;
  shardId: string;
  /** The destination is a cluster: server-wide commands go to every node. */
  cluster: boolean;
}

/**
 * A command of the catch-up (up to the bound): not applied, but what it touched goes into the dirty set
 * (its keys, or its whole dbs) to be copied again; server-wide commands are kept to be replayed at the
 * end. Returns the stream's db after the command (a SELECT changes it).
 */
export function collectForCatchUp(
  scope: StreamScope,
  db: number | undefined,
  argv: Buffer[],
  dirty: DirtySet,
  serverWide: ApplyCommand[],
): number | undefined {
  const dbs = db === undefined ? dbsBeforeSelect(scope) : [db];
  for (const candidate of dbs) {
    const d = filterCommand({ db: candidate, argv }, scope.filter);
    switch (d.action) {
      case 'select':
        return d.db;
      case 'apply':
        if (d.serverWide) {
          if (candidate === dbs[0]) {
            serverWide.push({ db: d.db, argv: d.argv, ...(scope.cluster ? { slot: ALL_NODES } : {}) });
          }
          break;
        }
        for (const k of d.keys) dirty.addKey(candidate, k);
        for (const other of dbNamedBy(scope.filter, argv, candidate))
          for (const k of d.keys) dirty.addKey(other, k);
        break;
      case 'recopy':
        for (const k of d.keys) dirty.addKey(d.db, k);
        break;
      case 'keyspace':
        if (scope.clusterSource) {
          // FLUSHDB/FLUSHALL of a cluster master: "db 0" is the shard's share of it, its slots, which the
          // resync empties on the destination and copies again from the shard alone (resyncDb). That is
          // exact for the reason a whole db's resync is: after it, the shard's slots hold chunks stamped
          // after the flush, and every key written between a chunk's stamp and the bound is in the dirty
          // set, re-copied at a stamp (a key gone from the source becomes a DEL). A cluster refuses SWAPDB.
          if (d.what === 'swapdb') throw keyspaceOnClusterShard(scope.shardId, d.what);
          if (d.dbs === 'all' || d.dbs.includes(0)) dirty.addDb(0);
          break;
        }
        for (const x of d.dbs === 'all' ? everyDirtyDb(scope, dirty) : d.dbs) dirty.addDb(x);
        break;
      case 'error':
        throw unsupported(d.message);
      default:
        break;
    }
  }
  return db;
}

/**
 * Before the stream's first SELECT the db is unknown (a continued stream does not repeat it): a command
 * then counts for every db it could be in.
 */
export function dbsBeforeSelect(scope: StreamScope): number[] {
  if (scope.clusterSource) return [0];
  const dbs = new Set(scope.syncedDbs);
  if (scope.filter.selectedDbs) for (const db of scope.filter.selectedDbs) dbs.add(db);
  else for (let db = 0; db < 16; db++) dbs.add(db);
  return [...dbs].sort((a, b) => a - b);
}

/** MOVE/COPY with a db argument also change that db. */
function dbNamedBy(filter: FilterContext, argv: Buffer[], db: number): number[] {
  const spec = lookupCommand(filter.catalogue, argv);
  if (!spec?.dbChange) return [];
  const at = locateArg(argv, spec.dbChange.arg);
  const n = at === undefined ? Number.NaN : Number(argv[at]!.toString('latin1'));
  return Number.isInteger(n) && n !== db ? [n] : [];
}

function everyDirtyDb(scope: StreamScope, dirty: DirtySet): number[] {
  const dbs = new Set(scope.syncedDbs);
  for (const db of dirty.keyDbs()) dbs.add(db);
  return [...dbs];
}

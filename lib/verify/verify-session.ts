import type { FullSyncUnit } from '../fullsync/copy-unit.ts';
import { keySlot } from '../redis/cluster-slot.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import {
  compareKeys,
  findExtras,
  type KeyResult,
  type SourceAbsent,
  type UnitSession,
} from './compare-keys.ts';
import { expiryReads } from './key-probe.ts';
import { PagedPool } from './paged-pool.ts';
import { CLIENT_NAME, isCluster, type VerifySide } from './verify-side.ts';
import type { VerifyOptions } from './verify-types.ts';

const MAX_BATCH_BYTES = 16 * 1024 * 1024;

type Side = 'source' | 'target';

/**
 * One unit's connections: one per node of each side for pipelined batches, SCAN connections, and paged
 * pools. Keys are grouped by the (source node, target node) pair that holds them, and each group goes
 * through compare-keys.ts as a batch of its own; with two standalone servers there is one pair and the
 * batch is passed through whole.
 */
export interface VerifySession {
  compare(keys: readonly Buffer[], absent: SourceAbsent): Promise<KeyResult[]>;
  /** Per key of a destination scan: whether the source lacks it. */
  findExtras(keys: readonly Buffer[]): Promise<boolean[]>;
  /** One opener per node of the side, each for a SCAN of that node's keys. */
  scans(side: Side): (() => Promise<RawConnection>)[];
  close(): Promise<void>;
}

export async function openSession(
  o: VerifyOptions,
  unit: FullSyncUnit,
  s: { mode: UnitSession['mode']; source: VerifySide; target: VerifySide; onBytes: (n: number) => void },
): Promise<VerifySession> {
  const conns: RawConnection[] = [];
  const sideOf = (side: Side) => (side === 'source' ? s.source : s.target);
  const openOn = async (side: Side, node: number) => {
    const conn = await RawConnection.open(sideOf(side).routing.nodes[node]!, {
      db: side === 'source' ? unit.sourceDb : unit.targetDb,
      clientName: CLIENT_NAME,
    });
    conns.push(conn);
    return conn;
  };
  const openAll = (side: Side) => Promise.all(sideOf(side).routing.nodes.map((_, i) => openOn(side, i)));
  const closeAll = () => Promise.all(conns.map((c) => c.close().catch(() => c.destroy())));
  const pools: PagedPool[] = [];
  try {
    const [srcs, tgts] = await Promise.all([openAll('source'), openAll('target')]);
    const base = {
      srcCaps: s.source.caps,
      tgtCaps: s.target.caps,
      ttlToleranceMs: o.ttlToleranceMs,
      onBytes: s.onBytes,
    };
    const dumpPayloads =
      o.dumpPayloads ?? (base.srcCaps.rdbFamily !== '' && base.srcCaps.rdbFamily === base.tgtCaps.rdbFamily);
    const pairs: UnitSession[][] = srcs.map((src, i) =>
      tgts.map((tgt, j) => {
        const paged = new PagedPool(() => Promise.all([openOn('source', i), openOn('target', j)]), base);
        pools.push(paged);
        return {
          ...base,
          src,
          tgt,
          srcDb: unit.sourceDb,
          tgtDb: unit.targetDb,
          // Per pair of nodes: INFO keyspace, which decides it, counts one node's keys.
          expiry: expiryReads(base.srcCaps, base.tgtCaps, unit.sourceDb, unit.targetDb),
          multiKeyExists: !isCluster(s.source),
          mode: s.mode,
          dumpPayloads,
          bigKeyBytes: o.bigKeyBytes ?? 8 * 1024 * 1024,
          maxBatchBytes: o.maxBatchBytes ?? MAX_BATCH_BYTES,
          paged,
        };
      }),
    );
    const route = router(s.source, s.target, pairs);
    return {
      compare: (keys, absent) => route(keys, (pair, part) => compareKeys(pair, part, absent)),
      findExtras: (keys) => route(keys, findExtras),
      scans: (side) => sideOf(side).routing.nodes.map((_, i) => () => openOn(side, i)),
      async close() {
        await Promise.all(pools.map((p) => p.close()));
        await closeAll();
      },
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

/** Runs `run` on each pair's share of `keys` and puts the results back in the keys' order. */
function router(
  source: VerifySide,
  target: VerifySide,
  pairs: UnitSession[][],
): <T>(
  keys: readonly Buffer[],
  run: (pair: UnitSession, keys: readonly Buffer[]) => Promise<T[]>,
) => Promise<T[]> {
  const targets = target.routing.nodes.length;
  const only = pairs.length === 1 && targets === 1 ? pairs[0]![0]! : undefined;
  return async (keys, run) => {
    if (only) return run(only, keys);
    const groups = new Map<number, { at: number[]; keys: Buffer[] }>();
    for (let at = 0; at < keys.length; at++) {
      const key = keys[at]!;
      const slot = keySlot(key);
      const id = source.routing.nodeOfSlot(slot) * targets + target.routing.nodeOfSlot(slot);
      let g = groups.get(id);
      if (!g) {
        g = { at: [], keys: [] };
        groups.set(id, g);
      }
      g.at.push(at);
      g.keys.push(key);
    }
    const out = new Array(keys.length);
    await Promise.all(
      [...groups].map(async ([id, g]) => {
        const results = await run(pairs[Math.floor(id / targets)]![id % targets]!, g.keys);
        for (let n = 0; n < g.at.length; n++) out[g.at[n]!] = results[n];
      }),
    );
    return out;
  };
}

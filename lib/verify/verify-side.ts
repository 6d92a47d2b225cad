import { DtsError } from '../errors.ts';
import { readClusterTopology } from '../redis/cluster-topology.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import { clusterRouting, standaloneRouting, type TargetRouting } from '../redis/target-routing.ts';
import { probeServer, type ServerCaps } from './server-caps.ts';

export const CLIENT_NAME = 'redis-dts-verify';

/**
 * One side of a verification: the nodes its keys live on (one server, or every master of a cluster,
 * each owning its slots' keys) and what they can answer.
 */
export interface VerifySide {
  /** The endpoint the user named (a cluster's seed node). */
  endpoint: RedisEndpoint;
  routing: TargetRouting;
  /** Of every node together: a feature counts only when every node has it; keyspaces are summed. */
  caps: ServerCaps;
}

/**
 * Probes the endpoint; on a cluster node, reads the slot map and probes every master. The seed's own
 * caps are not used for a cluster: the seed may be a replica, which holds no keys of its own to scan.
 */
export async function openVerifySide(ep: RedisEndpoint): Promise<VerifySide> {
  const seed = await capsOf(ep);
  if (!seed.clusterEnabled) return { endpoint: ep, routing: standaloneRouting(ep), caps: seed };
  const routing = clusterRouting(await readClusterTopology(ep));
  const caps = mergeCaps(await Promise.all(routing.nodes.map(capsOf)));
  return { endpoint: ep, routing, caps };
}

export function isCluster(side: VerifySide): boolean {
  return side.routing.topology !== undefined;
}

/** A cluster serves db 0 only: a unit asking another db of it is a mistake in --dbs or --db-map. */
export function assertClusterDb(side: VerifySide, db: number, unitId: string): void {
  if (!isCluster(side) || db === 0) return;
  const role = side.endpoint.role;
  throw new DtsError(
    'CLUSTER_DB',
    `${describeEndpoint(side.endpoint)} is a Redis Cluster node, which has db 0 only, but ${unitId} reads ${role} db ${db}`,
    role === 'source'
      ? 'verify db 0 of a cluster source (--dbs 0, with --db-map 0:N for the destination db it was copied to)'
      : 'map the source db onto db 0 of a cluster destination (--dbs N --db-map N:0)',
  );
}

async function capsOf(ep: RedisEndpoint): Promise<ServerCaps> {
  const conn = await RawConnection.open(ep, { clientName: CLIENT_NAME });
  try {
    return await probeServer(conn);
  } finally {
    await conn.close().catch(() => conn.destroy());
  }
}

function mergeCaps(all: ServerCaps[]): ServerCaps {
  const first = all[0]!;
  const same = (f: (c: ServerCaps) => string) => all.every((c) => f(c) === f(first));
  const every = (f: (c: ServerCaps) => boolean) => all.every(f);
  let keyspace: Record<number, { keys: number; expires: number }> | undefined = {};
  for (const c of all) {
    if (!c.keyspace || !keyspace) {
      keyspace = undefined;
      continue;
    }
    for (const [db, { keys, expires }] of Object.entries(c.keyspace)) {
      const sum = keyspace[Number(db)];
      keyspace[Number(db)] = { keys: (sum?.keys ?? 0) + keys, expires: (sum?.expires ?? 0) + expires };
    }
  }
  return {
    version: same((c) => c.version) ? first.version : [...new Set(all.map((c) => c.version))].join('/'),
    // Masters of mixed versions may write different DUMP formats: compare values as data then.
    rdbFamily: same((c) => c.rdbFamily) ? first.rdbFamily : '',
    clusterEnabled: true,
    keyspace,
    pexpiretime: every((c) => c.pexpiretime),
    memoryUsage: every((c) => c.memoryUsage),
    multiMember: every((c) => c.multiMember),
    // HPEXPIRETIME sent to a master without it would fail the verification.
    fieldTtl: every((c) => c.fieldTtl),
  };
}

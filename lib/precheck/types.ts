import type { Redis } from 'ioredis';
import type { DtsError } from '../errors.ts';
import type { ServerInfo } from '../redis/admin-client.ts';
import type { ClusterTopology } from '../redis/cluster-topology.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import type { TaskSpec } from '../task/spec.ts';

export type PrecheckStatus = 'passed' | 'warning' | 'failed' | 'skipped';

/** One line of the report, as DTS presents it: what was checked, the verdict, why, and what to do. */
export interface PrecheckItem {
  /** Stable identifier for scripts and tests, e.g. 'source-connect'. */
  id: string;
  title: string;
  status: PrecheckStatus;
  detail: string;
  /** What to change; present on every warning and failure. */
  fix?: string;
}

/** What the report says about one server; never credentials. */
export interface PrecheckServerSummary {
  /** host:port */
  address: string;
  /** e.g. 'Redis 7.0.15' or 'Valkey 8.0.1'. */
  version: string;
  role: 'master' | 'replica';
  clusterEnabled: boolean;
  usedMemory: number;
  /** 0 means no limit. */
  maxmemory: number;
  /** The selected dbs on this side (source dbs, or where they land on the destination). */
  dbs: number[];
  /** Cluster only: `3 masters: 127.0.0.1:7000 (slots 0-5460, 1 replica), …` (address etc. are the seed's). */
  layout?: string;
}

export interface PrecheckReport {
  items: PrecheckItem[];
  /** failed if any item failed, else warning if any warned, else passed (skipped items do not count). */
  status: 'passed' | 'warning' | 'failed';
  source?: PrecheckServerSummary;
  target?: PrecheckServerSummary;
  /** The reader the full sync takes: the spec's, or what its auto chose (absent: scan). */
  fullSyncReader?: 'scan' | 'rdb';
}

export type Role = RedisEndpoint['role'];

/** A connected server and what its INFO said at connect time. */
export interface PrecheckSide {
  ep: RedisEndpoint;
  client: Redis;
  info: ServerInfo;
  /** Every field of INFO (default sections), for what ServerInfo does not carry (run_id, maxmemory_policy…). */
  fields: Record<string, string>;
  /** performance.now() when `fields` was read: the first sample of the write rate. */
  fieldsAt: number;
  /**
   * Bytes `client` has sent to the server so far (its socket's bytesWritten): the precheck's own
   * commands, which total_net_input_bytes counts as input and the write-rate estimate must leave out.
   */
  sentBytes(): number;
  /** sentBytes() when `fields` was read. */
  fieldsSent: number;
  /** CONFIG GET of one parameter; undefined when CONFIG is unavailable (managed services rename it). */
  config(name: string): Promise<string | undefined>;
  /** Cluster mode: the slot map, read from this (seed) node when connecting. */
  topology?: ClusterTopology;
  /** Cluster mode: one connected side per master, in `topology.masters` order (the seed may be one of them). */
  masters?: PrecheckSide[];
  /** Cluster mode: why the layout could not be read or a master not reached (then topology and masters are unset). */
  layoutError?: DtsError;
}

/** A selected source db and the destination db it is written into. */
export interface DbRoute {
  sourceDb: number;
  targetDb: number;
}

export interface PrecheckContext {
  spec: TaskSpec;
  source?: PrecheckSide;
  target?: PrecheckSide;
  /** The dbs the task copies (as the full sync plans them); empty until the source is connected. */
  routes: DbRoute[];
  /** How long to watch the source's write rate. */
  sampleWriteRateMs: number;
  /** The full sync's reader, once the full-sync-reader item chose it (the spec's auto resolved). */
  fullSyncReader?: 'scan' | 'rdb';
}

export interface CheckResult {
  status: 'passed' | 'warning' | 'failed';
  detail: string;
  fix?: string;
}

/** One precheck item. Checks run in order; one that throws a DtsError becomes a Failed item. */
export interface PrecheckCheck {
  id: string;
  title: string;
  /** Connections the check cannot run without; it is skipped when one of them failed. */
  needs: readonly Role[];
  /** Why the check does not apply to this task (the item is then skipped with this reason). */
  notApplicable?(spec: TaskSpec): string | undefined;
  /** Only for tasks of one kind (another incremental reader): left out of other tasks' reports. */
  listedFor?(spec: TaskSpec): boolean;
  /**
   * Reads only the node the URL names, so it also runs on a cluster side whose layout could not be read;
   * any other check is skipped there, since it would look at the seed alone and miss the other masters.
   */
  seedOnly?: boolean;
  run(ctx: PrecheckContext): Promise<CheckResult>;
}

/** The connection a check declared in `needs`: the runner guarantees it is there. */
export function sideOf(ctx: PrecheckContext, role: Role): PrecheckSide {
  const side = ctx[role];
  if (!side) throw new Error(`precheck bug: a check used the ${role} connection without declaring it`);
  return side;
}

/** The servers a per-node fact must hold on: a cluster side's masters, or the one standalone server. */
export function nodesOf(side: PrecheckSide): PrecheckSide[] {
  if (side.info.clusterEnabled && !side.masters) {
    throw new Error('precheck bug: a check that is not seedOnly ran on a cluster side without its layout');
  }
  return side.masters ?? [side];
}

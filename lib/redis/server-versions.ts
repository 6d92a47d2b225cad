/**
 * What differs between the server versions redis-dts reads from and writes to, in one place: the
 * readers, the incremental apply, the precheck and the verification ask here instead of comparing
 * version numbers themselves.
 *
 * Versions are INFO's `redis_version` as major*10000 + minor*100 + patch (70015 for 7.0.15). Valkey
 * reports a frozen `redis_version:7.2.4` (the Redis release it forked from) next to its own
 * `valkey_version`, so every Redis-level fact below holds for Valkey 7.2 and 8.x through that number;
 * what is Valkey's own (its name, its DUMP output) goes through `serverVersionOf`.
 *
 * Facts, from the Redis and Valkey sources (expire.c, t_string.c, cluster.c, rdb.h, server.c):
 * - every version here: XADD `*` is propagated with the id it made, XADD/XTRIM MAXLEN `~` as the exact
 *   `=` count it trimmed to, so streams replay the same (6.0: t_stream.c, 6.2+: streamRewriteTrimArgument).
 * - 6.0: ACL users (ACL GETUSER; ACL DRYRUN only from 7.0). RDB 9.
 * - 6.2: SET … EXAT/PXAT, GETEX, GETDEL, COPY, LMOVE, XAUTOCLAIM, SMISMEMBER. RDB 9.
 * - before 7.0: EXPIRE, PEXPIRE, SETEX, PSETEX, SET … EX/PX, GETEX EX/PX (as PEXPIRE) and RESTORE
 *   without ABSTTL reach the replication stream with their *relative* times (absolute-expiry.ts turns
 *   them into absolute ones); no PEXPIRETIME (TTLs are read as PTTL + TIME); INFO takes one section.
 * - 7.0: relative expiries propagated as PEXPIREAT / SET … PXAT / RESTORE … ABSTTL; PEXPIRETIME;
 *   FUNCTION; listpack replaces ziplist for hashes and sorted sets; streams gain entries-added,
 *   max-deleted-entry-id and recorded-first-entry-id; multi-section INFO; EXPIRE NX/XX/GT/LT. RDB 10.
 * - 7.2: small lists and small sets of strings get a listpack encoding of their own; DEBUG DIGEST prints
 *   sorted-set scores in their shortest form instead of printf's %.17g. RDB 11.
 * - 7.4: hash field expiries (HPEXPIRETIME). RDB 12.
 * - Valkey 8.0: redis_version 7.2.4, valkey_version 8.0.x, RDB 11, server_name valkey.
 */

export type ServerProduct = 'redis' | 'valkey';

export interface ServerVersion {
  product: ServerProduct;
  /** INFO's redis_version as a number (Valkey's frozen 7.2.4 included); 0 when not reported. */
  num: number;
  /** `Redis 7.0.15` or `Valkey 8.0.1`: the version to name in messages. */
  label: string;
  /**
   * The product and its major.minor (`redis-7.2`, `valkey-8.0`): servers of one family write the same
   * DUMP payload for the same value, so payloads can be compared byte for byte. '' when unknown.
   */
  dumpFamily: string;
}

/** `7.0.15` → 70015; 0 for anything that is not a version. */
export function versionNumber(version: string): number {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) return 0;
  return Number(m[1]) * 10000 + Number(m[2]) * 100 + Number(m[3]);
}

/** The server's product and version from INFO's fields (server section). */
export function serverVersionOf(fields: Readonly<Record<string, string>>): ServerVersion {
  const redis = fields.redis_version ?? '';
  const valkey = fields.server_name === 'valkey' ? fields.valkey_version : undefined;
  const own = valkey ?? redis;
  const majorMinor = /^(\d+\.\d+)\./.exec(own)?.[1];
  return {
    product: valkey ? 'valkey' : 'redis',
    num: versionNumber(redis),
    label: valkey ? `Valkey ${valkey}` : `Redis ${redis || 'unknown'}`,
    dumpFamily: majorMinor ? `${valkey ? 'valkey' : 'redis'}-${majorMinor}` : '',
  };
}

const V6_0 = 60000;
const V7_0 = 70000;
const V7_2 = 70200;

/** PEXPIRETIME exists (7.0+; 0, unknown, counts as older); before, an absolute expiry is PTTL plus the server's TIME. */
export function hasPexpiretime(num: number): boolean {
  return num >= V7_0;
}

/** INFO takes several sections in one call (7.0+). */
export function hasMultiSectionInfo(num: number): boolean {
  return num >= V7_0;
}

/**
 * The source propagates EXPIRE, PEXPIRE, SETEX, PSETEX, SET EX/PX, GETEX EX/PX and RESTORE ttl with
 * relative times (before 7.0), which applied later would expire later: see absolute-expiry.ts.
 */
export function propagatesRelativeExpiries(num: number): boolean {
  return num > 0 && num < V7_0;
}

/**
 * ACL users exist (6.0+); before, whoever authenticates may run every enabled command. An unknown
 * version (0) is taken to have them: asking is then the way to find out.
 */
export function hasAcl(num: number): boolean {
  return num === 0 || num >= V6_0;
}

/** ACL DRYRUN answers "may this user run this command" (7.0+); 6.x has only ACL GETUSER's rules. */
export function hasAclDryrun(num: number): boolean {
  return num >= V7_0;
}

/** [first release, newest RDB version it reads and writes]: RESTORE refuses any payload newer. */
const RDB_BY_RELEASE: readonly [number, number][] = [
  [70400, 12],
  [V7_2, 11],
  [V7_0, 10],
  [50000, 9],
  [40000, 8],
  [30200, 7],
  [1, 6],
];

/** The newest RDB version a server of this redis_version reads (Valkey 8 by its 7.2.4: 11). */
export function rdbVersionOfRelease(num: number): number | undefined {
  if (num <= 0) return undefined;
  return RDB_BY_RELEASE.find(([from]) => num >= from)?.[1];
}

/** The RDB format version of a DUMP payload: the two bytes before its 8-byte CRC64, little endian. */
export function payloadRdbVersion(payload: Buffer): number | undefined {
  if (payload.length < 10) return undefined;
  return payload.readUInt16LE(payload.length - 10);
}

/**
 * OBJECT ENCODING names of small collections: 'ziplist' before 7.0 (hashes, sorted sets, and lists
 * inside their quicklist), 'listpack' after; small lists and sets of strings get a listpack of their
 * own from 7.2 (before: a quicklist, a hashtable).
 */
export function smallEncodings(num: number): { hash: string; zset: string; list: string; stringSet: string } {
  const listpack = num >= V7_0 ? 'listpack' : 'ziplist';
  const own = num >= V7_2;
  return {
    hash: listpack,
    zset: listpack,
    list: own ? 'listpack' : 'quicklist',
    stringSet: own ? 'listpack' : 'hashtable',
  };
}

/**
 * How DEBUG DIGEST prints a sorted set's scores before hashing them: '%.17g' before 7.2, the shortest
 * exact form from 7.2 (Valkey too). Servers that differ here give different digests for equal sorted
 * sets whose scores print differently (1/3, 0.1…), so their digests cannot be compared.
 */
export function zsetDigestScores(num: number): '%.17g' | 'shortest' {
  return num >= V7_2 ? 'shortest' : '%.17g';
}

/**
 * The destination reads an older RDB version than the source writes (7.2 → 6.2, Valkey 8 → 7.0): it
 * refuses the source's DUMP payloads, so keys can only be copied with type commands (logical copy).
 * Unknown versions (0) count as not older: RESTORE then says for itself.
 */
export function olderRdb(sourceNum: number, targetNum: number): boolean {
  const writes = rdbVersionOfRelease(sourceNum);
  const reads = rdbVersionOfRelease(targetNum);
  return writes !== undefined && reads !== undefined && reads < writes;
}

/**
 * Stream counters beyond the last id (7.0+): XSETID … ENTRIESADDED/MAXDELETEDID and XGROUP CREATE/SETID
 * … ENTRIESREAD. An older destination has no such fields, so these arguments are left out for it.
 */
export function hasStreamCounters(num: number): boolean {
  return num >= V7_0;
}

/** XGROUP CREATECONSUMER (6.2+). */
export function hasCreateConsumer(num: number): boolean {
  return num >= 60200;
}

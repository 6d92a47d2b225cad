/**
 * The least ACL rules each side needs, per mode, as tested on real servers
 * (test/integration/acl-least-privilege.test.ts) and listed in the README ("ACL users"). Rules keep the
 * commands' own names where a provider renamed them (PSYNC, REPLCONF).
 *
 * Source: `+@read` covers SCAN, DUMP, PEXPIRETIME (PTTL), TYPE, MEMORY USAGE and the reads of big keys
 * and of verify; chunks are read in MULTI/EXEC with INFO inside; the heartbeat is a SET, removed with DEL
 * at the end (`--no-heartbeat` spares +set +del). Destination: RESTORE, plus SET/DEL for the precheck's
 * probe key and a key gone from the source; incremental sync replays any write the source propagates,
 * in MULTI/EXEC batches with its marker.
 */
export const MINIMAL_ACL_RULES = {
  source: {
    full: '~* -@all +@read +info +select +ping +multi +exec',
    psync: '~* -@all +@read +info +select +ping +multi +exec +psync +replconf +set +del',
    // PSUBSCRIBE to the keyspace channels (`&*`: a pattern subscription needs the pattern itself allowed),
    // INFO commandstats for the commands that raise no per-key event, and the heartbeat probes.
    notifications: '~* &* -@all +@read +info +select +ping +multi +exec +psubscribe +set +del',
  },
  target: {
    full: '~* -@all +@read +info +select +ping +restore +set +del',
    psync: '~* -@all +@read +@write +info +select +ping +multi +exec',
    // Keys are copied, never replayed: RESTORE or DEL, as the full sync writes them.
    notifications: '~* -@all +@read +info +select +ping +multi +exec +restore +set +del',
  },
} as const;

/**
 * Extra rules for what not every task meets: values over proto-max-bulk-len are copied in parts (writes
 * of each type, RENAME and PEXPIREAT in MULTI/EXEC) on the destination; Redis 6 sources are read with
 * PTTL and TIME instead of PEXPIRETIME; the precheck verifies PSYNC permission with ACL DRYRUN (without
 * it the item is a warning that it could not verify).
 */
export const OCCASIONAL_ACL_RULES = {
  targetBigKeys: '+@write +multi +exec',
  sourceRedis6: '+time',
  sourcePrecheckPsync: '+acl|dryrun',
  /** Where CONFIG is refused, the notify-keyspace-events item probes each event class with a write. */
  sourcePrecheckNotifications: '+pexpire +lpush +hset +sadd +zadd +xadd +exists',
  /**
   * A cluster source's FLUSHDB/FLUSHALL empties that shard's slots on a cluster destination: the keys of
   * each slot are listed there (a standalone destination is SCANned, which +@read covers; UNLINK is @write).
   */
  targetClusterShardFlush: '+cluster|countkeysinslot +cluster|getkeysinslot',
  /** A cluster on either side: its slot map, read at the start and again after a failover or MOVED. */
  cluster: '+cluster|slots',
} as const;

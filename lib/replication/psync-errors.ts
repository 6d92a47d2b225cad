import { DtsError } from '../errors.ts';
import { classifyRedisError } from '../redis/classify-error.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import { RespError } from '../redis/resp.ts';

/** Where a replication connection was when something went wrong (named in messages). */
export type ReplicationPhase = 'handshake' | 'psync' | 'rdb' | 'stream';

const PHASE_TEXT: Record<ReplicationPhase, string> = {
  handshake: 'during the replication handshake',
  psync: 'while waiting for the PSYNC reply',
  rdb: 'during the RDB transfer',
  stream: 'in the replication stream',
};

const FULL_SYNC_ONLY =
  'or read changes without PSYNC (--incremental-reader notifications, from keyspace events), or run a full sync only (--sync-type full)';

/**
 * An error reply to AUTH, REPLCONF or PSYNC on a replication connection. Replication-specific causes get
 * their own fix; the rest (WRONGPASS, NOAUTH, LOADING, …) are classified like any other reply.
 */
export function classifyReplicationReply(message: string, ep: RedisEndpoint, command: string): DtsError {
  const reply = new RespError(message);
  const where = `${describeEndpoint(ep)}: ${command}: `;
  const make = (code: string, cause: string, fix: string) =>
    new DtsError(code, where + cause, fix, { cause: reply });
  const user = ep.username ?? 'default';

  if (reply.prefix === 'NOMASTERLINK') {
    return make(
      'SOURCE_REPLICA_UNLINKED',
      'the source is a replica whose link to its master is down, so it cannot serve PSYNC (NOMASTERLINK)',
      "point the source URL at the master, or restore the replica's link (INFO replication: master_link_status:up)",
    );
  }
  if (reply.prefix === 'NOPERM') {
    return make(
      'NO_PERMISSION',
      `ACL user '${user}' may not run '${command}', which incremental sync needs (NOPERM)`,
      `grant it: ACL SETUSER ${user} +psync +replconf, ${FULL_SYNC_ONLY}`,
    );
  }
  if (/^ERR unknown command/i.test(message) && (command === 'PSYNC' || command === 'REPLCONF')) {
    return make(
      'REPLICATION_UNAVAILABLE',
      `the source does not accept '${command}': it is renamed or disabled (rename-command), as managed services often do`,
      `enable ${command} on the source (remove its rename-command, or ask the provider), ${FULL_SYNC_ONLY}`,
    );
  }
  return classifyRedisError(reply, ep, command);
}

/** The replication connection closed or failed without being asked to. */
export function replicationLinkLost(ep: RedisEndpoint, phase: ReplicationPhase, cause?: unknown): DtsError {
  const detail = cause instanceof Error && cause.message ? ` (${cause.message})` : '';
  const fix =
    phase === 'rdb' || phase === 'psync'
      ? "retry; if it repeats, read the source's log: the RDB fork or transfer may fail (memory, disk, client-output-buffer-limit replica)"
      : 'reconnect with PSYNC <replid> <applied offset + 1>; if the link keeps dropping, raise client-output-buffer-limit replica and repl-timeout on the source';
  return new DtsError(
    'REPLICATION_LINK_LOST',
    `${describeEndpoint(ep)}: the replication connection closed ${PHASE_TEXT[phase]}${detail}`,
    fix,
    cause === undefined ? undefined : { cause },
  );
}

/** Nothing arrived for `ms` although the master sends keep-alives (PING, newlines) well within that. */
export function replicationTimeout(ep: RedisEndpoint, phase: ReplicationPhase, ms: number): DtsError {
  return new DtsError(
    'REPLICATION_TIMEOUT',
    `${describeEndpoint(ep)}: nothing received for ${ms} ms ${PHASE_TEXT[phase]}`,
    'check the network to the source and its load; reconnect with PSYNC <replid> <applied offset + 1>',
  );
}

/** A reply that no Redis-compatible master sends at this point. */
export function replicationProtocolError(ep: RedisEndpoint, phase: ReplicationPhase, what: string): DtsError {
  return new DtsError(
    'REPLICATION_PROTOCOL',
    `${describeEndpoint(ep)}: unexpected data ${PHASE_TEXT[phase]}: ${what}`,
    'check that the URL points at a Redis-compatible server that supports PSYNC; report a bug with its version if it does',
  );
}

import { DtsError } from '../errors.ts';
import { classifyRedisError } from '../redis/classify-error.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import { RespError } from '../redis/resp.ts';
import { orWithoutPsync, renamedPsyncFix } from './without-psync.ts';

/** Where a replication connection was when something went wrong (named in messages). */
export type ReplicationPhase = 'handshake' | 'psync' | 'rdb' | 'stream';

const PHASE_TEXT: Record<ReplicationPhase, string> = {
  handshake: 'during the replication handshake',
  psync: 'while waiting for the PSYNC reply',
  rdb: 'during the RDB transfer',
  stream: 'in the replication stream',
};

/**
 * An error reply to AUTH, REPLCONF or PSYNC on a replication connection. Replication-specific causes get
 * their own fix; the rest (WRONGPASS, NOAUTH, LOADING, …) are classified like any other reply.
 * `command` is what the command is (PSYNC, REPLCONF), whatever name it was sent under.
 */
export function classifyReplicationReply(message: string, ep: RedisEndpoint, command: string): DtsError {
  const reply = new RespError(message);
  const sentAs =
    command === 'PSYNC'
      ? ep.replicationCommands?.psync
      : command === 'REPLCONF'
        ? ep.replicationCommands?.replconf
        : undefined;
  const where = `${describeEndpoint(ep)}: ${command}${sentAs !== undefined ? ` (sent as '${sentAs}')` : ''}: `;
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
      // ACL rules name the commands by their own names, also where they are renamed.
      `grant it: ACL SETUSER ${user} +psync +replconf, ${orWithoutPsync()}`,
    );
  }
  if (/^ERR unknown command/i.test(message) && (command === 'PSYNC' || command === 'REPLCONF')) {
    return make(
      'REPLICATION_UNAVAILABLE',
      sentAs !== undefined
        ? `the source knows no command '${sentAs}': the name is wrong, or ${command} is disabled`
        : `the source does not accept '${command}': it is renamed or disabled (rename-command), as managed services do`,
      renamedPsyncFix(command, sentAs),
    );
  }
  return classifyRedisError(reply, ep, command);
}

/**
 * The source answered the PSYNC we sent under a renamed name with an RDB straight away, as it answers
 * SYNC: Redis tells PSYNC from SYNC by the name the client sent, so `rename-command PSYNC x` on Redis
 * OSS makes `x` a SYNC, which gives no replication id or offset and can never continue a stream. A
 * provider's renamed PSYNC (ElastiCache's, enabled by AWS support) keeps PSYNC's behaviour.
 */
export function renamedPsyncActsAsSync(ep: RedisEndpoint, sentAs: string): DtsError {
  return new DtsError(
    'RENAMED_PSYNC_IS_SYNC',
    `${describeEndpoint(ep)}: '${sentAs}' answered like SYNC (an RDB without +FULLRESYNC): a PSYNC renamed with ` +
      'rename-command on Redis OSS loses its PSYNC behaviour, so it gives no offset to resume from and no exact incremental sync can run on it',
    `remove the rename-command line for PSYNC on the source (keep it out of reach with ACL rules instead), or give the name your provider enabled as PSYNC, ${orWithoutPsync()}`,
  );
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

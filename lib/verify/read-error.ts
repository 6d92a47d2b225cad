import { DtsError } from '../errors.ts';
import { describeEndpoint } from '../redis/endpoint.ts';
import type { RawConnection } from '../redis/raw-connection.ts';
import { encodeCommand, RespError, type RespValue } from '../redis/resp.ts';
import { send } from './key-commands.ts';

/** An error reply to a read the verifier cannot do without: the user has to allow the command. */
export function readFailed(conn: RawConnection, err: RespError, command: string): DtsError {
  const who = describeEndpoint(conn.endpoint);
  if (err.prefix === 'MOVED' || err.prefix === 'ASK') {
    // Keys are read on the node that owned their slot when verify started.
    return new DtsError(
      'CLUSTER_CHANGED',
      `${who}: ${command} was redirected (${err.message}): the cluster's slots moved while verify ran`,
      'run verify again once the resharding or failover has finished',
    );
  }
  if (err.prefix === 'NOPERM' || /NOPERM/.test(err.message)) {
    return new DtsError(
      'NO_PERMISSION',
      `${who}: the user may not run ${command}, which verify needs (${err.message})`,
      'grant the user read access (e.g. ACL SETUSER <user> +@read +@keyspace +dump +info) or verify as another user',
    );
  }
  return new DtsError(
    'VERIFY_READ_FAILED',
    `${who}: ${command} failed during verify: ${err.message}`,
    `check that ${command} is allowed on this server (not renamed or disabled)`,
  );
}

/**
 * Throws readFailed for an error reply other than WRONGTYPE or XINFO's "no such key": a key that changed
 * type or vanished meanwhile, which a verify beside live writes (a sampled or repair round) meets.
 */
export function checkReply(conn: RawConnection, v: RespValue, command: string): RespValue {
  if (v instanceof RespError && v.prefix !== 'WRONGTYPE' && !/^ERR no such key/.test(v.message)) {
    throw readFailed(conn, v, command);
  }
  return v;
}

/** One command; error replies other than WRONGTYPE throw, WRONGTYPE is returned as a value. */
export async function ask(
  conn: RawConnection,
  command: readonly (string | number | Buffer)[],
): Promise<RespValue> {
  const [v] = await send(conn, encodeCommand(command), 1);
  return checkReply(conn, v ?? null, String(command[0]));
}

import type { Redis } from 'ioredis';
import { classifyAdminError } from '../redis/admin-client.ts';

export type ReplicationCommand = 'PSYNC' | 'REPLCONF';

/** What a name is on the server: the command we expect, no command at all, or some other command. */
export type ProbeOutcome =
  | { is: 'it' }
  | { is: 'unknown' }
  | { is: 'other'; reply: string; command?: string };

/**
 * Asks the server what `name` is without letting it do anything, since a real PSYNC makes the source
 * fork for an RDB. COMMAND INFO cannot tell: it answers for the names the server uses now, and a name
 * that is gone (renamed or disabled) looks the same either way. Instead each command is called the way
 * it refuses before running anything, with a reply that names what it is:
 *
 * - PSYNC with one argument: the arity check, which comes before the ACL check and names the command by
 *   its own name ("wrong number of arguments for 'psync' command", on 6.0 to Valkey 8, renamed or not);
 * - REPLCONF with an option it does not have: "Unrecognized REPLCONF option", and nothing is set
 *   (or NOPERM, which only a known command gets; the ACL item then names the missing rule).
 *
 * "unknown command" means the name is not a command on this server.
 */
export async function probeReplicationCommand(
  client: Redis,
  command: ReplicationCommand,
  name: string,
): Promise<ProbeOutcome> {
  const args = command === 'PSYNC' ? ['?'] : ['redis-dts-precheck', '1'];
  let message: string;
  try {
    const reply = await client.call(name, ...args);
    return { is: 'other', reply: String(reply).slice(0, 60) };
  } catch (e) {
    if (!(e instanceof Error) || !/^(ERR|NOPERM)\b/.test(e.message))
      throw classifyAdminError(client, e, name);
    message = e.message.split('\n')[0]!;
  }
  if (/^ERR unknown command/i.test(message)) return { is: 'unknown' };
  if (command === 'REPLCONF' && (/Unrecognized REPLCONF option/i.test(message) || /^NOPERM/.test(message))) {
    return { is: 'it' };
  }
  const arity = /wrong number of arguments for '([^']+)'/i.exec(message);
  if (arity && command === 'PSYNC' && arity[1]!.toLowerCase() === 'psync') return { is: 'it' };
  return { is: 'other', reply: message.slice(0, 80), ...(arity ? { command: arity[1]!.toUpperCase() } : {}) };
}

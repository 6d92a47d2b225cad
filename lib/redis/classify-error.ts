import { DtsError } from '../errors.ts';
import { describeEndpoint, type RedisEndpoint } from './endpoint.ts';
import { MINIMAL_ACL_RULES } from './minimal-acl.ts';

/**
 * Turns whatever a Redis connection or command threw into a DtsError that names the server, the cause and
 * the fix. `during` is a short label (a command name such as 'INFO', or 'connect') prefixed to the cause.
 *
 * The cause attached to the DtsError is a scrubbed copy: ioredis hangs `command.args` on reply errors,
 * and for AUTH/HELLO those args are the password, which an inspected cause chain would print.
 */
export function classifyRedisError(err: unknown, ep: RedisEndpoint, during?: string): DtsError {
  if (err instanceof DtsError) return err;
  const info = describeError(err);
  const where = `${describeEndpoint(ep)}: ${during ? `${during}: ` : ''}`;
  const make = (code: string, cause: string, fix: string) =>
    new DtsError(code, where + cause, fix, { cause: scrub(err, info) });

  const byCode = classifyByErrno(info, ep, make);
  if (byCode) return byCode;
  const tlsError = classifyTls(info, ep, make);
  if (tlsError) return tlsError;
  return classifyReply(info, ep, make) ?? classifyClient(info, ep, make);
}

type Make = (code: string, cause: string, fix: string) => DtsError;

interface ErrorInfo {
  message: string;
  code?: string;
  syscall?: string;
  /** Redis command that got the reply (ioredis sets it on reply errors). */
  commandName?: string;
  /** Set by connectAdmin on its own deadline: 'tcp' (no TCP connection) or 'reply' (connected, no answer). */
  timeoutPhase?: string;
  timeoutMs?: number;
}

function describeError(err: unknown): ErrorInfo {
  if (!(err instanceof Error)) return { message: String(err) };
  const e = err as Error & {
    code?: unknown;
    syscall?: unknown;
    command?: { name?: unknown };
    timeoutPhase?: unknown;
    timeoutMs?: unknown;
  };
  const info: ErrorInfo = { message: e.message };
  if (typeof e.code === 'string') info.code = e.code;
  if (typeof e.syscall === 'string') info.syscall = e.syscall;
  if (typeof e.command?.name === 'string') info.commandName = e.command.name;
  if (typeof e.timeoutPhase === 'string') info.timeoutPhase = e.timeoutPhase;
  if (typeof e.timeoutMs === 'number') info.timeoutMs = e.timeoutMs;
  return info;
}

function scrub(err: unknown, info: ErrorInfo): Error {
  const copy = new Error(info.message) as Error & { code?: string; command?: { name: string } };
  if (err instanceof Error) {
    copy.name = err.name;
    if (err.stack) copy.stack = err.stack;
  }
  if (info.code) copy.code = info.code;
  if (info.commandName) copy.command = { name: info.commandName };
  return copy;
}

const TLS_HINT_PLAIN = 'if the server only accepts TLS, use rediss:// instead of redis://';

function classifyByErrno(info: ErrorInfo, ep: RedisEndpoint, make: Make): DtsError | undefined {
  const hostPort = `${ep.host}:${ep.port}`;
  switch (info.code) {
    case 'ECONNREFUSED':
      return make(
        'UNREACHABLE',
        'connection refused: nothing is listening there (ECONNREFUSED)',
        'check host and port, and that redis-server is running',
      );
    case 'ENOTFOUND':
      return make(
        'UNREACHABLE',
        `host name '${ep.host}' does not resolve (ENOTFOUND)`,
        'check the spelling of the host name and the DNS (or VPC DNS) settings',
      );
    case 'EAI_AGAIN':
      return make(
        'UNREACHABLE',
        `host name '${ep.host}' could not be resolved: DNS did not answer (EAI_AGAIN)`,
        'check the DNS resolver and network, then retry',
      );
    case 'ETIMEDOUT':
      return classifyTimeout(info, ep, make);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return make(
        'UNREACHABLE',
        `no network route to ${hostPort} (${info.code})`,
        'check the address, the VPC routing/peering and that this machine is in a network that can reach it',
      );
    case 'ECONNRESET':
    case 'EPIPE':
      return make(
        'CONNECTION_LOST',
        `the server closed the connection (${info.code})`,
        ep.tls
          ? 'check that the server is running and accepts this client (maxclients, TLS settings), then retry'
          : `check that the server is running and accepts this client (maxclients); ${TLS_HINT_PLAIN}`,
      );
    default:
      return undefined;
  }
}

function classifyTimeout(info: ErrorInfo, ep: RedisEndpoint, make: Make): DtsError {
  const after = info.timeoutMs ? ` within ${info.timeoutMs} ms` : '';
  const tlsHint = ep.tls ? '; if the server has no TLS, use redis:// instead of rediss://' : '';
  if (info.timeoutPhase === 'tls') {
    return make(
      'TLS_FAILED',
      `the TCP connection opened but the TLS handshake got no answer${after}`,
      'use rediss:// only when the server has TLS enabled on this port; use redis:// for a plain-text server',
    );
  }
  if (info.timeoutPhase === 'reply') {
    return make(
      'TIMEOUT',
      `the TCP connection opened but the server sent no reply${after}`,
      `check that this port is a Redis server (not another service or a dead proxy) and that it is not blocked${tlsHint}`,
    );
  }
  return make(
    'UNREACHABLE',
    `no connection${after}: the host is unreachable or a firewall drops the packets (ETIMEDOUT)`,
    `check the host and port, security groups, firewall and network ACLs between here and the server${tlsHint}`,
  );
}

const CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
  'INVALID_CA',
]);

function classifyTls(info: ErrorInfo, ep: RedisEndpoint, make: Make): DtsError | undefined {
  const code = info.code ?? '';
  const msg = info.message;
  const caFlag = `--${ep.role}-tls-ca FILE`;
  if (
    /wrong.version.number|packet.length.too.long|unknown.protocol|http.request|record.layer.failure/i.test(
      msg,
    )
  ) {
    return make(
      'TLS_FAILED',
      `TLS handshake failed: the server does not speak TLS on this port (${code || 'wrong protocol'})`,
      'use rediss:// only when the server has TLS enabled; use redis:// for a plain-text server',
    );
  }
  if (CERT_CODES.has(code)) {
    return make(
      'TLS_FAILED',
      `the server's TLS certificate is not trusted (${code})`,
      `pass the CA that signed the server certificate with ${caFlag} (skipping verification is for testing only)`,
    );
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return make(
      'TLS_FAILED',
      `the server's TLS certificate is outside its validity period (${code})`,
      "renew the server certificate, and check this machine's clock",
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') {
    return make(
      'TLS_FAILED',
      `the server's TLS certificate does not name host '${ep.host}' (${code})`,
      'connect with a host name that the certificate lists (its CN or subjectAltName)',
    );
  }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || /SSL routines/.test(msg)) {
    return make(
      'TLS_FAILED',
      `TLS handshake failed (${code || msg})`,
      `check that the server has TLS enabled on this port, its certificate and ${caFlag}; a server that requires client certificates is not supported`,
    );
  }
  return undefined;
}

/** The command named in a NOPERM reply ('info', 'client|setname'), else the one ioredis says it sent. */
function deniedCommand(info: ErrorInfo): string | undefined {
  return /to run the '([^']+)' command/.exec(info.message)?.[1] ?? info.commandName;
}

/** Redis 7 appends the offending arguments to some errors; they may be keys or values, so drop them. */
function quoteReply(message: string): string {
  return message.replace(/, with args beginning with:.*$/s, '').trim();
}

function classifyReply(info: ErrorInfo, ep: RedisEndpoint, make: Make): DtsError | undefined {
  const msg = info.message;
  const prefix = /^([A-Z]+)\b/.exec(msg)?.[1] ?? '';
  const user = ep.username ?? 'default';
  const passwordFix =
    'check the password; for an ACL user give user:password (or redis://user:password@host:port in the URL)';

  if (prefix === 'WRONGPASS' || /invalid (username-)?password/i.test(msg)) {
    return make(
      'AUTH_FAILED',
      ep.username
        ? `wrong password for user '${ep.username}', or the user does not exist or is disabled (WRONGPASS)`
        : 'wrong password (WRONGPASS)',
      passwordFix,
    );
  }
  if (prefix === 'NOAUTH') {
    const hint = ep.username ? ' (servers before Redis 6 have no ACL users: give only the password)' : '';
    return make(
      'AUTH_FAILED',
      ep.password
        ? `authentication was not accepted (NOAUTH)${hint}`
        : 'the server requires a password but none was given (NOAUTH)',
      `give the ${ep.role} password in the URL (redis://:password@host:port) or through the password variable; for an ACL user use user:password`,
    );
  }
  if (prefix === 'NOPERM') {
    if (/keys|key\b/i.test(msg) && !/command/.test(msg)) {
      return make(
        'NO_PERMISSION',
        `ACL user '${user}' may not access some keys (NOPERM)`,
        `allow all keys for this user: ACL SETUSER ${user} ~* (or use a user with allkeys)`,
      );
    }
    if (/channel/i.test(msg)) {
      return make(
        'NO_PERMISSION',
        `ACL user '${user}' may not use some pub/sub channels (NOPERM)`,
        `allow channels for this user: ACL SETUSER ${user} &*`,
      );
    }
    const cmd = deniedCommand(info);
    const rule = cmd ? `+${cmd.toLowerCase()}` : '+@read +info';
    return make(
      'NO_PERMISSION',
      `ACL user '${user}' has no permission to run ${cmd ? `'${cmd.toUpperCase()}'` : 'a command'} (NOPERM)`,
      `grant it: ACL SETUSER ${user} ${rule} (a ${ep.role} user typically needs ${roleRules(ep.role)})`,
    );
  }
  if (prefix === 'OOM') {
    const side = ep.role === 'target' ? 'destination' : 'source';
    return make(
      `${ep.role.toUpperCase()}_OOM`,
      `${side} is out of memory (maxmemory reached) (OOM)`,
      `raise maxmemory on the ${ep.role} (CONFIG SET maxmemory …, or a larger instance) or free memory, then resume`,
    );
  }
  if (prefix === 'READONLY') {
    return make(
      'READONLY',
      `the server is a read-only replica (READONLY)`,
      `point the ${ep.role} URL at the primary (master) node, not a replica`,
    );
  }
  if (prefix === 'LOADING') {
    return make(
      'SERVER_LOADING',
      'the server is still loading its dataset into memory (LOADING)',
      'wait until the server has finished loading (INFO persistence: loading:0), then retry',
    );
  }
  if (prefix === 'MOVED' || prefix === 'ASK') {
    const to = msg.split(/\s+/)[2];
    return make(
      'CLUSTER_REDIRECT',
      `the server is a cluster node and redirected the command${to ? ` to ${to}` : ''} (${prefix})`,
      `this ${ep.role} has cluster mode enabled: configure it as a cluster (every shard) rather than a single node`,
    );
  }
  if (prefix === 'CROSSSLOT') {
    return make(
      'CROSSSLOT',
      `the server is a cluster and a command spanned keys in different hash slots (CROSSSLOT)`,
      `configure the ${ep.role} as a cluster so that commands are split by slot`,
    );
  }
  if (prefix === 'CLUSTERDOWN') {
    return make(
      'CLUSTER_DOWN',
      'the cluster is down (CLUSTERDOWN)',
      'wait until every slot is served again (CLUSTER INFO: cluster_state:ok), then retry',
    );
  }
  if (prefix === 'MASTERDOWN') {
    return make(
      'REPLICA_STALE',
      'the replica lost its link to the master and serves no stale data (MASTERDOWN)',
      `restore the replica's link to its master, or point the ${ep.role} URL at the master`,
    );
  }
  if (prefix === 'BUSY') {
    return make(
      'SERVER_BUSY',
      'the server is busy running a script or function (BUSY)',
      'wait for the script to finish (or SCRIPT KILL / FUNCTION KILL it), then retry',
    );
  }
  if (prefix === 'MISCONF') {
    return make(
      'SERVER_MISCONF',
      'the server refuses writes because it cannot persist to disk (MISCONF)',
      'fix the disk/persistence problem in the server log, or set stop-writes-on-bgsave-error no',
    );
  }
  if (/DB index is out of range|SELECT is not allowed in cluster mode/i.test(msg)) {
    return make(
      'BAD_DB',
      `the db number does not exist on the server (${quoteReply(msg)})`,
      "use a db below the server's databases setting (CONFIG GET databases); cluster servers only have db 0",
    );
  }
  if (/max(imum)? number of clients reached/i.test(msg)) {
    return make(
      'TOO_MANY_CLIENTS',
      'the server has reached maxclients',
      'raise maxclients on the server or close idle clients, then retry',
    );
  }
  if (/^ERR unknown command/i.test(msg)) {
    const cmd = /unknown command '([^']*)'/i.exec(msg)?.[1] ?? info.commandName ?? 'a command';
    return make(
      'UNSUPPORTED_COMMAND',
      `the server does not support '${cmd.toUpperCase()}' (${quoteReply(msg)})`,
      'use a Redis version that has this command, or ask the provider to enable it (managed services rename or disable some commands)',
    );
  }
  if (/^[A-Z]+ /.test(msg) && prefix !== '') {
    return make(
      'REDIS_ERROR',
      `the server replied with an error: ${quoteReply(msg)}`,
      'see the Redis error above; fix the server or data it names and retry',
    );
  }
  return undefined;
}

function roleRules(role: RedisEndpoint['role']): string {
  // The full+incremental rules: the widest of a side's tested minimal sets (README "ACL users").
  return MINIMAL_ACL_RULES[role].psync.replace(/^~\* -@all /, '');
}

function classifyClient(info: ErrorInfo, ep: RedisEndpoint, make: Make): DtsError {
  const msg = info.message;
  if (msg === 'Command timed out') {
    return classifyTimeout({ ...info, timeoutPhase: 'reply' }, ep, make);
  }
  if (
    msg === 'Connection is closed.' ||
    msg.startsWith("Stream isn't writeable") ||
    msg.startsWith('Reached the max retries per request limit')
  ) {
    return make(
      'CONNECTION_LOST',
      'the connection was closed',
      ep.tls
        ? 'check that the server is running and reachable, then retry'
        : `check that the server is running and reachable, then retry; ${TLS_HINT_PLAIN}`,
    );
  }
  return make(
    'REDIS_ERROR',
    `unexpected error: ${info.code ? `${info.code} ` : ''}${quoteReply(msg)}`,
    'check the server and the network, then retry; report it if it persists',
  );
}

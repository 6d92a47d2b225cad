/** Where a Redis server is and how to log in to it. Passwords live here only in memory: never printed. */
export interface RedisEndpoint {
  /** 'source' or 'target': used in error messages so the user knows which side failed. */
  role: 'source' | 'target';
  host: string;
  port: number;
  /** The db in the URL path, if any (informational: selection comes from --dbs / the task spec). */
  db?: number;
  username?: string;
  password?: string;
  tls?: RedisTls;
  /**
   * Source only: the names PSYNC and REPLCONF answer to where the provider renamed them (rename-command;
   * AWS support enables replication to an external replica under an account-specific PSYNC name). Every
   * replication command the product sends uses these; ACL rules keep the original names.
   */
  replicationCommands?: ReplicationCommandNames;
}

/** What PSYNC and REPLCONF are called on a server; absent fields keep their own name. */
export interface ReplicationCommandNames {
  psync?: string;
  replconf?: string;
}

/** The name to send PSYNC (or REPLCONF) under on this endpoint. */
export function replicationCommand(ep: RedisEndpoint, command: 'PSYNC' | 'REPLCONF'): string {
  const names = ep.replicationCommands;
  return (command === 'PSYNC' ? names?.psync : names?.replconf) ?? command;
}

export interface RedisTls {
  /** PEM text of the CA bundle to trust (read from --*-tls-ca FILE). */
  ca?: string;
  /** Accept any certificate (testing only). */
  insecure?: boolean;
  servername?: string;
}

/** `source 10.0.0.5:6379` (with `tls` when rediss): safe to print, never includes credentials. */
export function describeEndpoint(ep: RedisEndpoint): string {
  const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
  return `${ep.role} ${host}:${ep.port}${ep.tls ? ' (tls)' : ''}`;
}

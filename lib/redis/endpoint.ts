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

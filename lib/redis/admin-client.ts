import { once } from 'node:events';
import { TLSSocket } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import { classifyRedisError } from './classify-error.ts';
import type { RedisEndpoint } from './endpoint.ts';
import { versionNumber } from './server-versions.ts';

export interface ConnectAdminOptions {
  /** Database to select (default 0). */
  db?: number;
  /** Deadline for TCP connect, login and the first PING together (default 5000). */
  connectTimeoutMs?: number;
}

/** Reconnects allowed after a successful connect: enough to ride out a blip, few enough to fail visibly. */
const MAX_RECONNECTS = 3;

const endpoints = new WeakMap<Redis, RedisEndpoint>();

/**
 * Opens a control-plane connection (INFO, CONFIG, ACL checks, small reads) and proves it with a PING.
 * Every failure is a DtsError naming the endpoint; a failed attempt leaves no socket, timer or listener.
 */
export async function connectAdmin(ep: RedisEndpoint, opts: ConnectAdminOptions = {}): Promise<Redis> {
  const timeoutMs = opts.connectTimeoutMs ?? 5000;
  let connected = false;
  const options: RedisOptions = {
    host: ep.host,
    port: ep.port,
    db: opts.db ?? 0,
    lazyConnect: true,
    // RESP2 works with every server (HELLO needs Redis 6) and gives the plain replies INFO parsing expects.
    protocol: 2,
    // Commands must fail while disconnected rather than wait silently in a queue.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // The ready check runs INFO, which a restricted ACL user may not have; PING below proves the link.
    enableReadyCheck: false,
    // Our own deadline below covers the first connect and says which phase stalled; this one only
    // bounds later reconnects, and is longer so that it never wins the first race.
    connectTimeout: timeoutMs + 1000,
    disconnectTimeout: 500,
    connectionName: 'redis-dts-admin',
    // The initial connect never retries: a refused or unauthenticated connection will not heal in
    // milliseconds, and retrying only hides the first, most useful error.
    retryStrategy: (times) => (connected && times <= MAX_RECONNECTS ? 200 * times : null),
  };
  if (ep.username) options.username = ep.username;
  if (ep.password) options.password = ep.password;
  if (ep.tls) {
    options.tls = {};
    if (ep.tls.ca) options.tls.ca = ep.tls.ca;
    if (ep.tls.servername) options.tls.servername = ep.tls.servername;
    if (ep.tls.insecure) options.tls.rejectUnauthorized = false;
  }

  const client = new Redis(options);
  // The first error event carries the real cause; the connect() rejection that follows is only
  // "Connection is closed.".
  let firstError: unknown;
  const onError = (e: unknown) => {
    firstError ??= e;
  };
  client.on('error', onError);

  const deadline = setTimeout(() => {
    firstError ??= Object.assign(new Error(`no answer within ${timeoutMs} ms`), {
      code: 'ETIMEDOUT',
      timeoutPhase: timeoutPhase(client),
      timeoutMs,
    });
    client.disconnect();
  }, timeoutMs);

  try {
    await client.connect();
    // Handshake failures (e.g. SELECT of a missing db) are emitted as events without failing connect().
    if (firstError) throw firstError;
    await pingAllowingNoPerm(client);
    if (firstError) throw firstError;
  } catch (e) {
    clearTimeout(deadline);
    await closeNow(client);
    throw classifyRedisError(annotateTimeout(firstError ?? e, timeoutMs), ep);
  }
  clearTimeout(deadline);
  connected = true;
  client.off('error', onError);
  // Errors also reject the commands in flight, where callers classify them; without a listener
  // ioredis would print each one to stderr.
  client.on('error', () => {});
  endpoints.set(client, ep);
  return client;
}

/** A NOPERM reply still proves the server answered and accepted the login: permissions are checked per use. */
async function pingAllowingNoPerm(client: Redis): Promise<void> {
  try {
    await client.ping();
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('NOPERM')) return;
    throw e;
  }
}

/** Which step the first connect was stuck in: TCP connect, TLS handshake, or waiting for a reply. */
function timeoutPhase(client: Redis): 'tcp' | 'tls' | 'reply' {
  if (client.status !== 'connecting') return 'reply';
  const stream = client.stream as Redis['stream'] | undefined;
  return stream instanceof TLSSocket && !stream.connecting ? 'tls' : 'tcp';
}

function annotateTimeout(err: unknown, timeoutMs: number): unknown {
  const e = err as { code?: unknown; syscall?: unknown; timeoutPhase?: unknown; timeoutMs?: unknown };
  if (err instanceof Error && e.code === 'ETIMEDOUT' && e.timeoutPhase === undefined) {
    e.timeoutPhase = 'tcp';
    e.timeoutMs = timeoutMs;
  }
  return err;
}

/** Disconnects without reconnecting and waits until the socket is really closed. */
async function closeNow(client: Redis): Promise<void> {
  client.disconnect();
  const stream = client.stream as Redis['stream'] | undefined;
  if (!stream || stream.closed) return;
  const closed = once(stream, 'close');
  stream.destroy();
  await closed;
}

/** The endpoint a client from connectAdmin talks to (for error classification by other modules). */
export function endpointOf(client: Redis): RedisEndpoint | undefined {
  return endpoints.get(client);
}

/** classifyRedisError for a failure of `during` on a client from connectAdmin. */
export function classifyAdminError(client: Redis, err: unknown, during?: string): Error {
  const ep = endpoints.get(client);
  if (!ep) return err instanceof Error ? err : new Error(String(err));
  return classifyRedisError(err, ep, during);
}

export interface ServerInfo {
  redisVersion: string;
  /** major*10000 + minor*100 + patch, e.g. 70015 for 7.0.15 (0 when the server does not report it). */
  versionNum: number;
  /** INFO says 'slave' for a replica; normalised here. */
  role: 'master' | 'replica';
  usedMemory: number;
  /** 0 means no limit. */
  maxmemory: number;
  clusterEnabled: boolean;
  keyspace: Record<number, { keys: number; expires: number }>;
  replication: { replid: string; offset: number; backlogActive: boolean };
}

/** INFO (default sections) of a client from connectAdmin, parsed. */
export async function serverInfo(client: Redis): Promise<ServerInfo> {
  let text: string;
  try {
    text = await client.info();
  } catch (e) {
    throw classifyAdminError(client, e, 'INFO');
  }
  const f = parseInfo(text);
  const keyspace: ServerInfo['keyspace'] = {};
  for (const [field, value] of Object.entries(f)) {
    const m = /^db(\d+)$/.exec(field);
    if (!m) continue;
    const kv = parseInfo(value.replaceAll(',', '\n').replaceAll('=', ':'));
    keyspace[Number(m[1])] = { keys: num(kv.keys), expires: num(kv.expires) };
  }
  const redisVersion = f.redis_version ?? '';
  return {
    redisVersion,
    versionNum: versionNumber(redisVersion),
    role: f.role === 'slave' || f.role === 'replica' ? 'replica' : 'master',
    usedMemory: num(f.used_memory),
    maxmemory: num(f.maxmemory),
    clusterEnabled: f.cluster_enabled === '1',
    keyspace,
    replication: {
      replid: f.master_replid ?? '',
      offset: num(f.master_repl_offset),
      backlogActive: f.repl_backlog_active === '1',
    },
  };
}

/** `field:value` lines of INFO (sections and comments skipped); the value keeps any further colons. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    out[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return out;
}

function num(value: string | undefined): number {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

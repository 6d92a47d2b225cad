import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { isDtsError } from '../errors.ts';
import { classifyAdminError } from '../redis/admin-client.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { serverVersionOf } from '../redis/server-versions.ts';

/** `Valkey 8.0.1` or `Redis 7.0.15`: Valkey reports a frozen redis_version, so its own is the one to name. */
export function productVersion(fields: Record<string, string>): string {
  return serverVersionOf(fields).label;
}

/**
 * A reply that means "this server will not let us use the command" rather than "the server is broken":
 * renamed or disabled (managed services), or denied to this ACL user.
 */
export function isCommandUnavailable(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /^ERR unknown (sub)?command|^NOPERM/i.test(msg);
}

/**
 * The reply that sank a MULTI/EXEC: ioredis rejects with EXECABORT and keeps the queued command's own
 * error (NOPERM, OOM…) in `previousErrors`; that one names the cause.
 */
export function transactionCause(e: unknown): unknown {
  const previous = (e as { previousErrors?: unknown[] } | undefined)?.previousErrors;
  return Array.isArray(previous) && previous.length > 0 ? previous[0] : e;
}

/** CONFIG GET with a cache; undefined when CONFIG is unavailable, other errors are DtsErrors. */
export function configGetter(client: Redis): (name: string) => Promise<string | undefined> {
  const cache = new Map<string, string | undefined>();
  let unavailable = false;
  return async (name) => {
    if (unavailable) return undefined;
    if (cache.has(name)) return cache.get(name);
    let reply: unknown;
    try {
      reply = await client.call('CONFIG', 'GET', name);
    } catch (e) {
      if (!isCommandUnavailable(e)) throw classifyAdminError(client, e, 'CONFIG GET');
      unavailable = true;
      return undefined;
    }
    const pairs = Array.isArray(reply) ? reply.map(String) : [];
    const i = pairs.indexOf(name);
    const value = i >= 0 ? pairs[i + 1] : undefined;
    cache.set(name, value);
    return value;
  };
}

/** A key name no user key has: internal keys are never copied, and the random part avoids clashes. */
export function precheckKey(prefix: string): string {
  return `${prefix}precheck:${randomBytes(8).toString('hex')}`;
}

export const TEMP_KEY_PREFIX = 'redis-dts:tmp:';
/** Long enough to outlive the check, short enough that a key left by a crash goes away by itself. */
export const TEMP_KEY_TTL_MS = 60_000;

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

/** `0, 1 and 5` */
export function listWords(items: readonly (string | number)[]): string {
  const s = items.map(String);
  if (s.length <= 1) return s.join('');
  return `${s.slice(0, -1).join(', ')} and ${s[s.length - 1]}`;
}

export function plural(n: number, word: string): string {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;
}

/** host:port, with brackets around an IPv6 address. */
export function addressOf(ep: RedisEndpoint): string {
  return `${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${ep.port}`;
}

/** A Failed result from a DtsError a check provoked on purpose (anything else is rethrown: a bug). */
export function failedFrom(e: unknown, what: string): { status: 'failed'; detail: string; fix: string } {
  if (!isDtsError(e)) throw e;
  return { status: 'failed', detail: `${what}: ${e.message}`, fix: e.fix };
}

/**
 * The source's `notify-keyspace-events` setting, as the notification reader needs it: K (keyspace
 * channels, which carry the key name) and every key-event class that A stands for (generic, string,
 * list, set, hash, zset, expired, evicted, stream). Module key types (d) are covered by A in Redis 7 but
 * are not needed for data types redis-dts copies. `m` (key miss) and `n` (new key) are not needed.
 */
const NEEDED_CLASSES = 'g$lshzxet';

/** Flags missing from `value` (CONFIG GET's spelling, e.g. "AKE", or "Kgx"), as one string; '' if none. */
export function missingNotifyFlags(value: string): string {
  const has = new Set(value);
  const missing: string[] = [];
  if (!has.has('K')) missing.push('K');
  if (!has.has('A') && [...NEEDED_CLASSES].some((c) => !has.has(c))) missing.push('A');
  return missing.join('');
}

/** The value to CONFIG SET: what is set now plus K and A (E, m, n and anything else kept). */
export function withNeededFlags(value: string): string {
  const kept = [...new Set(value)].filter((c) => c === 'E' || c === 'm' || c === 'n');
  return `KA${kept.join('')}`;
}

/** The one-line fix for a source whose notify-keyspace-events lacks what the reader needs. */
export function notifyConfigFix(current: string | undefined): string {
  const value = current === undefined ? 'KEA' : withNeededFlags(current);
  return (
    `set notify-keyspace-events to "${value}" on the source: on ElastiCache / MemoryDB in the cluster's ` +
    `parameter group (parameter notify-keyspace-events = ${value}), elsewhere in redis.conf or with ` +
    `CONFIG SET notify-keyspace-events ${value}, or let redis-dts set it (--set-notify-keyspace-events)`
  );
}

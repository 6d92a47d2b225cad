/**
 * Which keys a task copies: include/exclude prefixes, and never redis-dts' own keys (heartbeat,
 * exactly-once markers, temporary keys of big-key copies), which must not travel or be verified.
 * Pure functions on Buffers: key names are bytes, not text.
 */
export const INTERNAL_KEY_PREFIXES = ['redis-dts:heartbeat:', 'redis-dts:marker:', 'redis-dts:tmp:'] as const;

export interface KeyFilterSpec {
  /** Copy only keys starting with one of these (empty or absent: every key). */
  include?: readonly string[];
  /** Never copy keys starting with one of these; wins over include. */
  exclude?: readonly string[];
}

export type KeyPredicate = (key: Buffer) => boolean;

export function makeKeyFilter(spec: KeyFilterSpec = {}): KeyPredicate {
  const include = (spec.include ?? []).map((p) => Buffer.from(p));
  const exclude = (spec.exclude ?? []).map((p) => Buffer.from(p));
  return (key) => {
    if (isInternalKey(key)) return false;
    for (const p of exclude) if (startsWith(key, p)) return false;
    if (include.length === 0) return true;
    for (const p of include) if (startsWith(key, p)) return true;
    return false;
  };
}

const INTERNAL_COMMON = Buffer.from('redis-dts:');
const INTERNAL_PREFIXES = INTERNAL_KEY_PREFIXES.map((p) => Buffer.from(p));
const LOWER_R = 0x72;

/**
 * Asked for every key of every command the stream carries: one byte decides for nearly all of them, and
 * no Buffer is made per call (the incremental apply spent a quarter of its time in the GC).
 */
export function isInternalKey(key: Buffer): boolean {
  if (key.length < INTERNAL_COMMON.length || key[0] !== LOWER_R || !startsWith(key, INTERNAL_COMMON))
    return false;
  for (const p of INTERNAL_PREFIXES) if (startsWith(key, p)) return true;
  return false;
}

function startsWith(key: Buffer, prefix: Buffer): boolean {
  return key.length >= prefix.length && key.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/** `0:2,1:3` → {0: 2, 1: 3}; dbs not named map to themselves. */
export function targetDbFor(dbMap: Readonly<Record<number, number>> | undefined, sourceDb: number): number {
  return dbMap?.[sourceDb] ?? sourceDb;
}

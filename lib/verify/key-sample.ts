import { type KeyPredicate, makeKeyFilter } from '../commands/key-filter.ts';

/**
 * Keeps a fraction of keys chosen by a hash of their name, not at random: the source pass, the destination
 * pass and every later round then agree on which keys are in the sample.
 */
export function sampleByKeyHash(rate: number): KeyPredicate {
  if (rate >= 1) return () => true;
  const limit = Math.floor(rate * 2 ** 32);
  return (key) => keyHash32(key) < limit;
}

/** FNV-1a with murmur3's finalizer, so that keys differing only in a trailing digit spread evenly. */
export function keyHash32(key: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i]!, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The task's selection, never redis-dts' own keys (heartbeat, markers, temporary keys), and the sample. */
export function verifySelection(keep: KeyPredicate, sampleRate: number): KeyPredicate {
  const notInternal = makeKeyFilter();
  const sampled = sampleByKeyHash(sampleRate);
  return (key) => notInternal(key) && keep(key) && sampled(key);
}

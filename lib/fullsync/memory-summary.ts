import type { ShardCheckpoint } from '../state/task-store.ts';
import { printableKey } from './copy-key-in-parts.ts';
import { IN_PARTS_NAMED, type UnitProgress } from './copy-unit.ts';

/**
 * What the checkpoints say about memory: the peak RSS of the processes that copied (scan units) or
 * loaded an RDB (shards), and the keys copied in parts.
 */
export interface MemorySummary {
  /** The largest peak RSS of the processes that copied a unit or loaded an RDB, MB; absent before any. */
  peakRssMb?: number;
  keysInParts: number;
  /** Up to IN_PARTS_NAMED of them, printable. */
  inPartsKeys: string[];
}

export function memorySummary(
  units: readonly Pick<UnitProgress, 'keysInParts' | 'inPartsKeys' | 'peakRssBytes'>[],
  rdbLoads: readonly Pick<ShardCheckpoint, 'rdbOversized' | 'rdbPeakRssBytes'>[] = [],
): MemorySummary {
  let peak = 0;
  let keysInParts = 0;
  const inPartsKeys: string[] = [];
  const name = (k: string) => {
    if (inPartsKeys.length < IN_PARTS_NAMED) inPartsKeys.push(k);
  };
  for (const u of units) {
    peak = Math.max(peak, u.peakRssBytes ?? 0);
    keysInParts += u.keysInParts;
    for (const k of u.inPartsKeys ?? []) name(k);
  }
  for (const s of rdbLoads) {
    peak = Math.max(peak, s.rdbPeakRssBytes ?? 0);
    keysInParts += s.rdbOversized?.length ?? 0;
    for (const k of s.rdbOversized ?? []) name(printableKey(Buffer.from(k.key, 'base64')));
  }
  return { ...(peak > 0 ? { peakRssMb: peak / 1024 / 1024 } : {}), keysInParts, inPartsKeys };
}

/** `N keys copied in parts ("a", "b" …)`, or '' when none was. */
export function inPartsText(m: MemorySummary): string {
  if (m.keysInParts === 0) return '';
  const more = m.keysInParts > m.inPartsKeys.length ? ' …' : '';
  return `${m.keysInParts.toLocaleString('en-US')} key(s) copied in parts (${m.inPartsKeys.join(', ')}${more})`;
}

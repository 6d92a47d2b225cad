import { IN_PARTS_NAMED, type UnitProgress } from './copy-unit.ts';

/** What the units' checkpoints say about memory: the peak RSS of their copies and the keys copied in parts. */
export interface MemorySummary {
  /** The largest peak RSS of the processes that copied a unit, MB; absent before any chunk. */
  peakRssMb?: number;
  keysInParts: number;
  /** Up to IN_PARTS_NAMED of them, printable. */
  inPartsKeys: string[];
}

export function memorySummary(
  units: readonly Pick<UnitProgress, 'keysInParts' | 'inPartsKeys' | 'peakRssBytes'>[],
): MemorySummary {
  let peak = 0;
  let keysInParts = 0;
  const inPartsKeys: string[] = [];
  for (const u of units) {
    peak = Math.max(peak, u.peakRssBytes ?? 0);
    keysInParts += u.keysInParts;
    for (const k of u.inPartsKeys ?? []) if (inPartsKeys.length < IN_PARTS_NAMED) inPartsKeys.push(k);
  }
  return { ...(peak > 0 ? { peakRssMb: peak / 1024 / 1024 } : {}), keysInParts, inPartsKeys };
}

/** `N keys copied in parts ("a", "b" …)`, or '' when none was. */
export function inPartsText(m: MemorySummary): string {
  if (m.keysInParts === 0) return '';
  const more = m.keysInParts > m.inPartsKeys.length ? ' …' : '';
  return `${m.keysInParts.toLocaleString('en-US')} key(s) copied in parts (${m.inPartsKeys.join(', ')}${more})`;
}

import { hashTag } from '../fullsync/copy-key-temp-name.ts';

export const SLOT_COUNT = 16384;

/** CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection, the variant Redis Cluster uses. */
const CRC16_TABLE = buildCrc16Table();

function buildCrc16Table(): Uint16Array {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[byte] = crc & 0xffff;
  }
  return table;
}

function crc16(bytes: Buffer): number {
  let crc = 0;
  for (let i = 0; i < bytes.length; i++)
    crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}

/** The cluster slot of `key`, as CLUSTER KEYSLOT computes it (hash tag honoured). */
export function keySlot(key: Buffer | string): number {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key;
  return crc16(hashTag(bytes) ?? bytes) % SLOT_COUNT;
}

const MAX_TAG_TRIES = 100_000;

/**
 * The first of '0', '1', … (base 36) whose slot `owns` accepts: a hash tag that routes a key such as
 * `redis-dts:marker:task:shard:{<tag>}` to a chosen node. Deterministic, so every process picks the same key.
 */
export function tagForSlots(owns: (slot: number) => boolean): string {
  for (let i = 0; i < MAX_TAG_TRIES; i++) {
    const tag = i.toString(36);
    if (owns(keySlot(tag))) return tag;
  }
  throw new Error(`no hash tag among the first ${MAX_TAG_TRIES} lands in the requested slots`);
}

let slotTagTable: string[] | undefined;

/** The first base-36 tag (as tagForSlots orders them) that lands in `slot`; the table is built once. */
export function slotTag(slot: number): string {
  if (!slotTagTable) {
    const table: string[] = new Array(SLOT_COUNT);
    let found = 0;
    for (let i = 0; found < SLOT_COUNT; i++) {
      const tag = i.toString(36);
      const s = keySlot(tag);
      if (table[s] === undefined) {
        table[s] = tag;
        found++;
      }
    }
    slotTagTable = table;
  }
  return slotTagTable[slot]!;
}

/** Keys grouped by hash slot, each group in the keys' order (one transaction per slot on a cluster). */
export function groupBySlot(keys: readonly Buffer[]): Buffer[][] {
  const bySlot = new Map<number, Buffer[]>();
  for (const k of keys) {
    const slot = keySlot(k);
    const group = bySlot.get(slot);
    if (group) group.push(k);
    else bySlot.set(slot, [k]);
  }
  return [...bySlot.values()];
}

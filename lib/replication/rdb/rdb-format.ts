/** RDB opcodes and value types (Redis rdb.h, Redis 6.0–7.4 and Valkey 7.2–8), with their names for errors. */

export const OPCODE = {
  SLOT_INFO: 244,
  FUNCTION2: 245,
  FUNCTION_PRE_GA: 246,
  MODULE_AUX: 247,
  IDLE: 248,
  FREQ: 249,
  AUX: 250,
  RESIZEDB: 251,
  EXPIRETIME_MS: 252,
  EXPIRETIME: 253,
  SELECTDB: 254,
  EOF: 255,
} as const;

export const TYPE = {
  STRING: 0,
  LIST: 1,
  SET: 2,
  ZSET: 3,
  HASH: 4,
  ZSET_2: 5,
  MODULE_PRE_GA: 6,
  MODULE_2: 7,
  HASH_ZIPMAP: 9,
  LIST_ZIPLIST: 10,
  SET_INTSET: 11,
  ZSET_ZIPLIST: 12,
  HASH_ZIPLIST: 13,
  LIST_QUICKLIST: 14,
  STREAM_LISTPACKS: 15,
  HASH_LISTPACK: 16,
  ZSET_LISTPACK: 17,
  LIST_QUICKLIST_2: 18,
  STREAM_LISTPACKS_2: 19,
  SET_LISTPACK: 20,
  STREAM_LISTPACKS_3: 21,
  HASH_METADATA_PRE_GA: 22,
  HASH_LISTPACK_EX_PRE_GA: 23,
  HASH_METADATA: 24,
  HASH_LISTPACK_EX: 25,
} as const;

const TYPE_NAMES = new Map<number, string>(
  Object.entries(TYPE).map(([name, code]) => [code, name.toLowerCase().replaceAll('_', '-')]),
);

/** e.g. `hash-listpack (16)`, for messages. */
export function typeName(type: number): string {
  return `${TYPE_NAMES.get(type) ?? 'unknown'} (${type})`;
}

/** The newest RDB format this reader walks (Redis 7.4); Valkey 8 writes 11. */
export const NEWEST_RDB_VERSION = 12;
/** The RDB versions that end with an 8-byte CRC64 after the EOF opcode. */
export const FIRST_RDB_VERSION_WITH_CHECKSUM = 5;

/** Module type names are 9 characters from this set, 6 bits each, above a 10-bit encoding version. */
const MODULE_NAME_CHARSET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The module type name and encoding version a 64-bit module id stands for (e.g. `ReJSON-RL`, 3). */
export function moduleTypeOf(moduleId: bigint): { name: string; version: number } {
  const version = Number(moduleId & 1023n);
  let bits = moduleId >> 10n;
  let name = '';
  for (let i = 0; i < 9; i++) {
    name = MODULE_NAME_CHARSET[Number(bits & 63n)] + name;
    bits >>= 6n;
  }
  return { name, version };
}

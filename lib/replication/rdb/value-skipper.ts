import type { RdbCursor } from './rdb-cursor.ts';
import { Malformed } from './rdb-cursor.ts';
import { TYPE } from './rdb-format.ts';

/** Why a value type cannot be copied as it stands; the parser turns it into a named DtsError. */
export class UnsupportedValue extends Error {
  readonly type: number;
  /** For module values: the 64-bit module id that names the module type. */
  readonly moduleId: bigint | undefined;
  constructor(type: number, why: string, moduleId?: bigint) {
    super(why);
    this.type = type;
    this.moduleId = moduleId;
  }
}

/**
 * Moves the cursor over one serialized value of the given RDB type without decoding it: only lengths
 * are read, element bytes are skipped (Redis rdb.c rdbLoadObject, one branch per type and encoding).
 */
export function skipValue(c: RdbCursor, type: number): void {
  switch (type) {
    case TYPE.STRING:
    // One string holding the whole encoded structure.
    case TYPE.HASH_ZIPMAP:
    case TYPE.LIST_ZIPLIST:
    case TYPE.SET_INTSET:
    case TYPE.ZSET_ZIPLIST:
    case TYPE.HASH_ZIPLIST:
    case TYPE.HASH_LISTPACK:
    case TYPE.ZSET_LISTPACK:
    case TYPE.SET_LISTPACK:
      c.skipString();
      return;
    case TYPE.LIST:
    case TYPE.SET:
    // Quicklist 1: a count of ziplists, each one string.
    case TYPE.LIST_QUICKLIST:
      for (let n = c.length(); n > 0; n--) c.skipString();
      return;
    case TYPE.LIST_QUICKLIST_2:
      // Per node: its container kind (plain or packed), then one string.
      for (let n = c.length(); n > 0; n--) {
        c.length();
        c.skipString();
      }
      return;
    case TYPE.ZSET:
      for (let n = c.length(); n > 0; n--) {
        c.skipString();
        c.skipTextDouble();
      }
      return;
    case TYPE.ZSET_2:
      for (let n = c.length(); n > 0; n--) {
        c.skipString();
        c.skip(8);
      }
      return;
    case TYPE.HASH:
      for (let n = c.length(); n > 0; n--) {
        c.skipString();
        c.skipString();
      }
      return;
    case TYPE.STREAM_LISTPACKS:
    case TYPE.STREAM_LISTPACKS_2:
    case TYPE.STREAM_LISTPACKS_3:
      skipStream(c, type);
      return;
    case TYPE.MODULE_PRE_GA:
    case TYPE.MODULE_2:
      throw new UnsupportedValue(type, 'a module value', c.bigLength());
    case TYPE.HASH_METADATA_PRE_GA:
    case TYPE.HASH_LISTPACK_EX_PRE_GA:
    case TYPE.HASH_METADATA:
    case TYPE.HASH_LISTPACK_EX:
      // Redis 7.4's hash with field TTLs: no 7.4 server here to verify the copy against, so refused.
      throw new UnsupportedValue(
        type,
        'hashes with field TTLs (Redis 7.4 HEXPIRE) are not supported by the RDB reader',
      );
    default:
      throw new Malformed(`an unknown value type ${type}`);
  }
}

/** Stream IDs in the PEL are 16 raw bytes (ms and seq, big endian); times are 8-byte milliseconds. */
const RAW_ID = 16;
const MS_TIME = 8;

function skipStream(c: RdbCursor, type: number): void {
  // Listpack nodes: the node's master ID (a 16-byte string) and the listpack.
  for (let n = c.length(); n > 0; n--) {
    c.skipString();
    c.skipString();
  }
  // Length, last ID (ms, seq); since version 2 also first ID, max deleted ID and entries added.
  const header = type === TYPE.STREAM_LISTPACKS ? 3 : 8;
  for (let i = 0; i < header; i++) c.length();
  for (let groups = c.length(); groups > 0; groups--) {
    c.skipString(); // name
    c.length(); // last delivered ID ms
    c.length(); // and seq
    if (type !== TYPE.STREAM_LISTPACKS) c.length(); // entries read
    for (let pel = c.length(); pel > 0; pel--) {
      c.skip(RAW_ID + MS_TIME); // ID, delivery time
      c.length(); // delivery count
    }
    for (let consumers = c.length(); consumers > 0; consumers--) {
      c.skipString(); // name
      c.skip(type === TYPE.STREAM_LISTPACKS_3 ? 2 * MS_TIME : MS_TIME); // seen time (and active time)
      for (let pel = c.length(); pel > 0; pel--) c.skip(RAW_ID);
    }
  }
}

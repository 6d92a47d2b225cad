import { randomBytes } from 'node:crypto';

const OPEN = 0x7b; // '{'
const CLOSE = 0x7d; // '}'

/**
 * The bytes Redis Cluster hashes for `key`: between the first `{` and the first `}` after it, when that is
 * non-empty; otherwise undefined (the whole key is hashed).
 */
export function hashTag(key: Buffer): Buffer | undefined {
  const open = key.indexOf(OPEN);
  if (open < 0) return undefined;
  const close = key.indexOf(CLOSE, open + 1);
  if (close < 0 || close === open + 1) return undefined;
  return key.subarray(open + 1, close);
}

/**
 * A fresh temporary key name that starts with `tempPrefix` and hashes to the same cluster slot as `key`, so
 * that `RENAME tmp key` is legal on a cluster destination.
 */
export function tempKeyFor(key: Buffer, tempPrefix: string, suffix = randomBytes(8).toString('hex')): Buffer {
  // A `{` in the prefix would become the temp name's hash tag and send it to another slot.
  if (tempPrefix.includes('{')) throw new Error(`temp key prefix must not contain '{': ${tempPrefix}`);
  const head = Buffer.from(`${tempPrefix}${suffix}`);
  const tag = hashTag(key);
  if (tag) return Buffer.concat([head, Buffer.from(':{'), tag, Buffer.from('}')]);
  // Without a tag the whole key is hashed, so embedding it whole as our tag gives the same slot, unless the
  // key holds a `}` (our tag would end early) or is empty (`{}` is no tag). Those keys get an untagged temp
  // name: fine on a standalone destination; on a cluster the RENAME would be refused as cross-slot (a short
  // tag with the same CRC16 slot could be searched for if that case ever matters).
  if (key.length === 0 || key.includes(CLOSE)) return head;
  return Buffer.concat([head, Buffer.from(':{'), key, Buffer.from('}')]);
}

import type { RawConnection } from '../redis/raw-connection.ts';
import { RespError, type RespValue } from '../redis/resp.ts';
import { expiryText, sides } from './describe.ts';
import { encodeKeyCommands, HEAD, send } from './key-commands.ts';
import { readFailed } from './read-error.ts';
import type { ServerCaps } from './server-caps.ts';
import type { Finding } from './verify-types.ts';

/** What one pipelined probe of a batch tells about each key on one side. */
export interface Probe {
  /** TYPE per key; undefined when not read. */
  types: (string | undefined)[];
  /** Absolute ms, -1 without expiry (or not read: see ExpiryReads), -2 missing. */
  expireAt: number[];
  /** MEMORY USAGE; undefined when the server does not tell. */
  memory: (number | undefined)[];
  /** false when a reply said the key does not exist. */
  present: boolean[];
  /**
   * Keys with an expiry in the db (INFO keyspace, read after every other reply of the probe); undefined
   * when INFO was not read or did not say.
   */
  expiring: number | undefined;
}

/**
 * Whether a unit's probes read each key's expiry. Most datasets have no expiring key at all, and reading
 * PEXPIRETIME per key costs the source as much as MEMORY USAGE does; so while INFO keyspace says the db
 * holds no key with an expiry, on either side, the expiry is not read. This is exact: INFO is read after
 * the probe's other replies, on the same connection, so an expiry present at the probe and still there
 * at INFO is counted, and a batch whose INFO counts one on either side is probed again with expiries.
 * An expiry that appears and vanishes in between is a key being written, which round 1 does not
 * believe either (later rounds re-check what differs). Shared by the batches in flight of one pair of
 * nodes; where INFO is refused every probe reads expiries, as before.
 */
export interface ExpiryReads {
  read: boolean;
}

export function expiryReads(src: ServerCaps, tgt: ServerCaps, srcDb: number, tgtDb: number): ExpiryReads {
  const expiring = (caps: ServerCaps, db: number) => (caps.keyspace ? (caps.keyspace[db]?.expires ?? 0) : 1);
  return { read: expiring(src, srcDb) > 0 || expiring(tgt, tgtDb) > 0 };
}

const INFO_KEYSPACE_COMMAND = Buffer.from('*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n', 'latin1');

/**
 * TYPE (when asked), the expiry (when asked) and MEMORY USAGE of every key in one pipeline, then INFO
 * keyspace when the server allows INFO (caps.keyspace), for the db's count of expiring keys.
 */
export async function probe(
  conn: RawConnection,
  caps: ServerCaps,
  db: number,
  keys: readonly Buffer[],
  o: { withType: boolean; withExpiry: boolean },
  /** Encoded batches by their commands: both sides usually send the same bytes. */
  encoded = new Map<string, Buffer>(),
): Promise<Probe> {
  const heads: Buffer[] = [];
  const names: string[] = [];
  const add = (head: Buffer, name: string) => {
    heads.push(head);
    names.push(name);
  };
  if (o.withType) add(HEAD.TYPE, 'TYPE');
  if (o.withExpiry)
    add(caps.pexpiretime ? HEAD.PEXPIRETIME : HEAD.PTTL, caps.pexpiretime ? 'PEXPIRETIME' : 'PTTL');
  if (caps.memoryUsage) add(HEAD.MEMORY_USAGE, 'MEMORY USAGE');
  const withInfo = caps.keyspace !== undefined;
  const perKey = heads.length * keys.length;
  const at = { ms: 0 };
  const shape = `${names.join(',')}${withInfo ? ',INFO' : ''}`;
  let buf = encoded.get(shape);
  if (!buf) {
    const commands = encodeKeyCommands(heads, keys);
    buf = withInfo ? Buffer.concat([commands, INFO_KEYSPACE_COMMAND]) : commands;
    encoded.set(shape, buf);
  }
  const replies = await send(conn, buf, perKey + (withInfo ? 1 : 0), at);
  for (let i = 0; i < perKey; i++) {
    const v = replies[i];
    if (v instanceof RespError) throw readFailed(conn, v, names[i % names.length]!);
  }
  const n = heads.length;
  const ttlAt = o.withType ? 1 : 0;
  const memAt = ttlAt + (o.withExpiry ? 1 : 0);
  const p: Probe = {
    types: [],
    expireAt: [],
    memory: [],
    present: [],
    expiring: withInfo ? expiringIn(replies[perKey], db) : undefined,
  };
  for (let i = 0; i < keys.length; i++) {
    const type = o.withType ? String(replies[n * i]) : undefined;
    const t = o.withExpiry ? (replies[n * i + ttlAt] as number) : -1;
    const m = caps.memoryUsage ? replies[n * i + memAt] : undefined;
    p.types.push(type);
    p.expireAt.push(t < 0 || caps.pexpiretime ? t : at.ms + t);
    p.memory.push(typeof m === 'number' ? m : undefined);
    p.present.push(type !== 'none' && t !== -2 && m !== null);
  }
  return p;
}

/** `expires=N` of `db<N>:keys=…,expires=…` in INFO keyspace; 0 when the db has no line (no keys). */
function expiringIn(reply: RespValue | undefined, db: number): number | undefined {
  if (!Buffer.isBuffer(reply) && typeof reply !== 'string') return undefined;
  const text = String(reply);
  if (!text.includes('# Keyspace')) return undefined;
  const line = new RegExp(`^db${db}:(.*)$`, 'm').exec(text);
  if (!line) return 0;
  const m = /(?:^|,)expires=(\d+)/.exec(line[1]!);
  return m ? Number(m[1]) : undefined;
}

export function ttlFinding(a: number, b: number, tolerance: number): Finding | undefined {
  // -2: gone since the probe; the key's presence decides, and a later round sees the settled state.
  if (a === b || a === -2 || b === -2) return undefined;
  if (a >= 0 && b >= 0 && Math.abs(a - b) <= tolerance) return undefined;
  return { category: 'ttl', detail: sides(expiryText(a), expiryText(b)) };
}

/**
 * Both sides' probes of a batch, with expiries when the unit reads them, or when either side's INFO,
 * read last, counts a key with an expiry in the db: then the batch is probed again with expiries, and
 * the unit keeps reading them until both sides count none again.
 */
export async function probeBoth(
  s: {
    src: RawConnection;
    tgt: RawConnection;
    srcCaps: ServerCaps;
    tgtCaps: ServerCaps;
    srcDb: number;
    tgtDb: number;
    expiry: ExpiryReads;
  },
  keys: readonly Buffer[],
  withType: boolean,
): Promise<[Probe, Probe]> {
  const run = (withExpiry: boolean) => {
    const encoded = new Map<string, Buffer>();
    return Promise.all([
      probe(s.src, s.srcCaps, s.srcDb, keys, { withType, withExpiry }, encoded),
      probe(s.tgt, s.tgtCaps, s.tgtDb, keys, { withType, withExpiry }, encoded),
    ]);
  };
  const noneExpiring = (a: Probe, b: Probe) => a.expiring === 0 && b.expiring === 0;
  const withExpiry = s.expiry.read;
  const first = await run(withExpiry);
  if (withExpiry) {
    s.expiry.read = !noneExpiring(...first);
    return first;
  }
  if (noneExpiring(...first)) return first;
  s.expiry.read = true;
  return run(true);
}

/**
 * Relative expiries of a pre-7.0 source's replication stream, made absolute.
 *
 * Redis before 7.0 propagates these commands with the relative time the client gave (read in 6.0.20
 * and 6.2.16: expire.c, t_string.c, cluster.c), so replaying them as they arrive would add the apply
 * lag to every expiry:
 * - EXPIRE key s, PEXPIRE key ms (an expiry already in the past is propagated as DEL/UNLINK instead);
 * - SETEX key s value, PSETEX key ms value (6.0 as is; 6.2 as `SET key value PX ms`);
 * - SET key value … EX s | PX ms … (6.0 with every option as given; 6.2 as `SET key value PX ms`);
 * - GETEX key EX|PX (6.2 propagates it as `PEXPIRE key ms`, handled here anyway should a server send it);
 * - RESTORE / RESTORE-ASKING key ttl payload … without ABSTTL (also what a MIGRATE into the source
 *   propagates there);
 * - scripts and MULTI propagate their effects, which are the commands above.
 * Redis 7.0 rewrites all of them to PEXPIREAT, SET … PXAT and RESTORE … ABSTTL before propagating.
 *
 * Given the source's clock at the command, each becomes its absolute form. A SET with a relative
 * expiry becomes the SET without it followed by PEXPIREAT (SET … PXAT needs 6.2, and a 6.2 source may
 * write to a 6.0 destination, which reads the same RDB version); the applier runs both in one
 * transaction (on a cluster destination, a resume copies keys written after the marker again).
 */

const EXPIRE = Buffer.from('expire');
const PEXPIRE = Buffer.from('pexpire');
const SETEX = Buffer.from('setex');
const PSETEX = Buffer.from('psetex');
const SET = Buffer.from('set');
const GETEX = Buffer.from('getex');
const RESTORE = Buffer.from('restore');
const RESTORE_ASKING = Buffer.from('restore-asking');
const EX = Buffer.from('ex');
const PX = Buffer.from('px');
const ABSTTL = Buffer.from('absttl');
const PEXPIREAT_NAME = Buffer.from('PEXPIREAT');
const SET_NAME = Buffer.from('SET');
const ABSTTL_NAME = Buffer.from('ABSTTL');

/** Case-insensitive comparison with a lowercase ASCII word, without allocating. */
function isWord(arg: Buffer | undefined, lower: Buffer): boolean {
  if (!arg || arg.length !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if ((arg[i]! | 0x20) !== lower[i]) return false;
  return true;
}

/** A decimal integer argument; undefined for anything else (the command is then left as it is). */
function integer(arg: Buffer | undefined): number | undefined {
  if (!arg || arg.length === 0 || arg.length > 20) return undefined;
  const n = Number(arg.toString('latin1'));
  return Number.isSafeInteger(n) ? n : undefined;
}

function pexpireAt(key: Buffer, atMs: number, rest: readonly Buffer[] = []): Buffer[] {
  return [PEXPIREAT_NAME, key, Buffer.from(String(atMs)), ...rest];
}

/**
 * True when argv may carry a relative expiry: the cheap test before `toAbsoluteExpiry`, and what tells
 * the caller that the command cannot be replayed as is when the source's clock at it is unknown.
 */
export function carriesRelativeExpiry(argv: readonly Buffer[]): boolean {
  const name = argv[0];
  if (!name) return false;
  switch (name.length) {
    case 3:
      return isWord(name, SET) && setExpiryAt(argv) !== undefined;
    case 5:
      return isWord(name, SETEX) || (isWord(name, GETEX) && getexExpiryAt(argv) !== undefined);
    case 6:
      return isWord(name, EXPIRE) || isWord(name, PSETEX);
    case 7:
      return isWord(name, PEXPIRE) || (isWord(name, RESTORE) && restoreIsRelative(argv));
    case 14:
      return isWord(name, RESTORE_ASKING) && restoreIsRelative(argv);
    default:
      return false;
  }
}

/**
 * The commands that replay argv with its expiry as an absolute time, `sourceMs` being the source's
 * clock (Unix ms) when it ran the command; undefined when argv carries no relative expiry (replay it
 * as it is).
 */
export function toAbsoluteExpiry(argv: readonly Buffer[], sourceMs: number): Buffer[][] | undefined {
  if (!carriesRelativeExpiry(argv)) return undefined;
  const name = argv[0]!;
  const key = argv[1]!;
  if (isWord(name, EXPIRE) || isWord(name, PEXPIRE)) {
    const amount = integer(argv[2]);
    if (amount === undefined) return undefined;
    const ms = isWord(name, EXPIRE) ? amount * 1000 : amount;
    return [pexpireAt(key, sourceMs + ms, argv.slice(3))];
  }
  if (isWord(name, SETEX) || isWord(name, PSETEX)) {
    const amount = integer(argv[2]);
    if (amount === undefined || argv.length !== 4) return undefined;
    const ms = isWord(name, SETEX) ? amount * 1000 : amount;
    return [[SET_NAME, key, argv[3]!], pexpireAt(key, sourceMs + ms)];
  }
  if (isWord(name, SET)) {
    const at = setExpiryAt(argv)!;
    const amount = integer(argv[at + 1]);
    if (amount === undefined) return undefined;
    const ms = isWord(argv[at], EX) ? amount * 1000 : amount;
    const rest = [...argv.slice(0, at), ...argv.slice(at + 2)];
    return [[SET_NAME, ...rest.slice(1)], pexpireAt(key, sourceMs + ms)];
  }
  if (isWord(name, GETEX)) {
    const at = getexExpiryAt(argv)!;
    const amount = integer(argv[at + 1]);
    if (amount === undefined) return undefined;
    const ms = isWord(argv[at], EX) ? amount * 1000 : amount;
    return [pexpireAt(key, sourceMs + ms)];
  }
  // RESTORE key ttl payload [REPLACE] [IDLETIME s] [FREQ f]
  const ttl = integer(argv[2]);
  if (ttl === undefined) return undefined;
  return [[name, key, Buffer.from(String(sourceMs + ttl)), ...argv.slice(3), ABSTTL_NAME]];
}

/** Index of SET's EX or PX option (after key and value), if any. */
function setExpiryAt(argv: readonly Buffer[]): number | undefined {
  for (let i = 3; i < argv.length; i++) {
    if (isWord(argv[i], EX) || isWord(argv[i], PX)) return i;
  }
  return undefined;
}

function getexExpiryAt(argv: readonly Buffer[]): number | undefined {
  return isWord(argv[2], EX) || isWord(argv[2], PX) ? 2 : undefined;
}

/** RESTORE with a ttl (0 is none) and without ABSTTL. */
function restoreIsRelative(argv: readonly Buffer[]): boolean {
  const ttl = integer(argv[2]);
  if (ttl === undefined || ttl <= 0) return false;
  for (let i = 4; i < argv.length; i++) if (isWord(argv[i], ABSTTL)) return false;
  return true;
}

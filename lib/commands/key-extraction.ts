import { asciiLower, lookupCommand } from './catalogue.ts';
import type { ArgLocator, Catalogue, CommandSpec, KeySpec } from './catalogue-types.ts';

export interface ExtractedKeys {
  /**
   * 'keys': keys found; 'none': the command has no keys; 'keyspace': it acts on whole dbs (FLUSHDB,
   * FLUSHALL, SWAPDB); 'unknown': not in the catalogue, or the keys it writes cannot be located.
   */
  kind: 'keys' | 'keyspace' | 'none' | 'unknown';
  /** Every key argument, in key-spec order (a key named twice appears twice). */
  keys: Buffer[];
  /** argv index of each of `keys`. */
  positions: number[];
  /** The keys the command may modify (a subset of keys; all of them where the specs cannot tell). */
  writes: Buffer[];
  /** False when the command may also read keys not listed (SORT … BY/GET patterns). */
  complete: boolean;
  /** The catalogue entry, when there is one. */
  command?: CommandSpec;
  /** Why kind is 'unknown'. */
  reason?: string;
}

interface KeyRef {
  pos: number;
  written: boolean;
}

/** Raised inside extraction when argv does not fit the specs; becomes kind 'unknown'. */
class KeysUnknown extends Error {}

/**
 * Where argv's keys are, computed from the catalogue's key specs as the server itself does it
 * (db.c getKeysUsingKeySpecs), or from first/last/step for entries from servers without key specs.
 */
export function extractKeys(
  catalogue: Catalogue,
  argv: readonly Buffer[],
  /** argv's catalogue entry, when the caller has looked it up already. */
  known?: CommandSpec,
): ExtractedKeys {
  const command = known ?? lookupCommand(catalogue, argv);
  if (!command) return { ...empty('unknown'), reason: 'not in the command catalogue' };
  if (command.keyspace) return { ...empty('keyspace'), command };
  const single = singleKeyAt1(command);
  if (single !== undefined && argv.length >= 2) {
    // Most commands of a stream (SET, INCR, LPUSH, HSET…): one key, argv[1]; what the general path below
    // returns for them, without its arrays of positions (the apply loop runs this for every command).
    const key = argv[1]!;
    return {
      kind: 'keys',
      keys: [key],
      positions: [1],
      writes: single.written || command.write ? [key] : [],
      complete: true,
      command,
    };
  }
  let refs: KeyRef[];
  let complete = true;
  try {
    if (command.keysProc === 'sort') ({ refs, complete } = sortKeys(argv));
    else if (command.keysProc === 'migrate') refs = migrateKeys(argv);
    else if (command.keySpecs) ({ refs, complete } = specKeys(command.keySpecs, argv));
    else refs = legacyKeys(command, argv);
  } catch (e) {
    if (!(e instanceof KeysUnknown)) throw e;
    return { ...empty('unknown'), command, reason: e.message };
  }
  const keys = refs.map((r) => argv[r.pos]!);
  let writes = refs.filter((r) => r.written).map((r) => argv[r.pos]!);
  // A write command whose specs all say RO (XREADGROUP in 7.0) still writes: trust the command flag.
  if (writes.length === 0 && command.write) writes = keys;
  return {
    kind: keys.length > 0 ? 'keys' : 'none',
    keys,
    positions: refs.map((r) => r.pos),
    writes,
    complete,
    command,
  };
}

const SINGLE_KEY = new WeakMap<CommandSpec, { written: boolean } | null>();

/** Whether the command's key specs name exactly argv[1] (when argv has it), and if that key is written. */
function singleKeyAt1(command: CommandSpec): { written: boolean } | undefined {
  let plan = SINGLE_KEY.get(command);
  if (plan === undefined) {
    const specs = command.keySpecs;
    const spec = specs?.length === 1 ? specs[0]! : undefined;
    plan =
      !command.keysProc &&
      spec &&
      !spec.flags.includes('not_key') &&
      !spec.flags.includes('incomplete') &&
      spec.begin.type === 'index' &&
      spec.begin.index === 1 &&
      spec.find.type === 'range' &&
      spec.find.lastKey === 0 &&
      spec.find.keyStep >= 1
        ? { written: !spec.flags.includes('RO') }
        : null;
    SINGLE_KEY.set(command, plan);
  }
  return plan ?? undefined;
}

function empty(kind: ExtractedKeys['kind']): ExtractedKeys {
  return { kind, keys: [], positions: [], writes: [], complete: true };
}

function specKeys(specs: readonly KeySpec[], argv: readonly Buffer[]): { refs: KeyRef[]; complete: boolean } {
  const refs: KeyRef[] = [];
  let complete = true;
  for (const spec of specs) {
    if (spec.flags.includes('not_key')) continue;
    const written = !spec.flags.includes('RO');
    const found = specPositions(spec, argv);
    const incomplete = found === undefined || spec.flags.includes('incomplete');
    if (incomplete && written) throw new KeysUnknown('its key specs cannot locate every key it writes');
    if (incomplete) complete = false;
    for (const pos of found ?? []) refs.push({ pos, written });
  }
  return { refs, complete };
}

/** Positions of one spec's keys; undefined when the spec is of a type we cannot evaluate. */
function specPositions(spec: KeySpec, argv: readonly Buffer[]): number[] | undefined {
  const argc = argv.length;
  let first: number;
  if (spec.begin.type === 'index') {
    first = spec.begin.index;
  } else if (spec.begin.type === 'keyword') {
    const at = findKeyword(argv, spec.begin.keyword, spec.begin.startFrom);
    // An optional keyword that is absent: this spec has no keys here.
    if (at === undefined) return [];
    first = at + 1;
  } else {
    return undefined;
  }

  // Optional trailing keys absent (PFMERGE destkey with no sourcekey, Redis 7.2+): the server accepted the
  // command, so this spec has no keys here (getKeysUsingKeySpecs skips it the same way).
  if (first >= argc && spec.find.type === 'range') return [];
  let last: number;
  let step: number;
  const find = spec.find;
  if (find.type === 'range') {
    step = find.keyStep;
    if (find.lastKey >= 0) last = first + find.lastKey;
    else if (find.limit === 0) last = argc + find.lastKey;
    else last = first + (Math.floor((argc - first) / find.limit) + find.lastKey);
  } else if (find.type === 'keynum') {
    step = find.keyStep;
    const numArg = argv[first + find.keyNumIdx];
    const numkeys = numArg === undefined ? undefined : parseCount(numArg);
    if (numkeys === undefined) {
      throw new KeysUnknown(`its number of keys (argument ${first + find.keyNumIdx}) is not a count`);
    }
    first += find.firstKey;
    last = first + numkeys - 1;
    if (numkeys === 0) return [];
  } else {
    return undefined;
  }

  if (step < 1 || first < 1 || last >= argc || last < first) {
    throw new KeysUnknown(`its ${argc} arguments do not match its key specs`);
  }
  const out: number[] = [];
  for (let i = first; i <= last; i += step) out.push(i);
  return out;
}

function parseCount(b: Buffer): number | undefined {
  const s = b.toString('latin1');
  return /^\d{1,9}$/.test(s) ? Number(s) : undefined;
}

/** Redis' keyword search: forwards from startFrom to the second-to-last arg, or backwards from argc+startFrom. */
function findKeyword(argv: readonly Buffer[], keyword: string, startFrom: number): number | undefined {
  const argc = argv.length;
  const want = keyword.toLowerCase();
  const start = startFrom > 0 ? startFrom : argc + startFrom;
  const end = startFrom > 0 ? argc - 1 : 0;
  for (let i = start; i !== end; i = start <= end ? i + 1 : i - 1) {
    if (i >= argc || i < 1) break;
    if (asciiLower(argv[i]!) === want) return i;
  }
  return undefined;
}

/** Key positions of an entry from a server without key specs. */
function legacyKeys(command: CommandSpec, argv: readonly Buffer[]): KeyRef[] {
  const { first, last, step } = command.legacyKeys ?? { first: 0, last: 0, step: 0 };
  if (command.flags.includes('movablekeys')) {
    throw new KeysUnknown('its keys move with its arguments and the server describes no key specs');
  }
  if (first === 0) return [];
  const end = last < 0 ? argv.length + last : last;
  if (step < 1 || end >= argv.length || end < first) {
    throw new KeysUnknown(`its ${argv.length} arguments do not match its first/last/step keys`);
  }
  const refs: KeyRef[] = [];
  for (let i = first; i <= end; i += step) refs.push({ pos: i, written: true });
  return refs;
}

/**
 * SORT key [BY pattern] [LIMIT off count] [GET pattern …] [ASC|DESC] [ALPHA] [STORE dst], parsed as
 * sortCommand does (the last STORE wins). BY/GET patterns with `*` read keys named by the sorted
 * values, which nothing can list in advance: the result is then incomplete.
 */
function sortKeys(argv: readonly Buffer[]): { refs: KeyRef[]; complete: boolean } {
  if (argv.length < 2) throw new KeysUnknown('SORT needs a key');
  const refs: KeyRef[] = [{ pos: 1, written: false }];
  let store: number | undefined;
  let complete = true;
  for (let i = 2; i < argv.length; i++) {
    const word = asciiLower(argv[i]!);
    const next = argv[i + 1];
    if (word === 'limit') {
      i += 2;
    } else if ((word === 'by' || word === 'get') && next) {
      const pattern = next.toString('latin1');
      if (pattern !== '#' && pattern.includes('*')) complete = false;
      i += 1;
    } else if (word === 'store' && next) {
      store = i + 1;
      i += 1;
    }
  }
  if (store !== undefined) refs.push({ pos: store, written: true });
  return { refs, complete };
}

/**
 * MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS k …], parsed
 * as migrateGetKeys does.
 */
function migrateKeys(argv: readonly Buffer[]): KeyRef[] {
  const skip: Record<string, number> = { copy: 0, replace: 0, auth: 1, auth2: 2 };
  let first = 3;
  let count = 1;
  for (let i = 6; i < argv.length; i++) {
    const word = asciiLower(argv[i]!);
    if (word === 'keys') {
      if (argv[3]!.length > 0) throw new KeysUnknown('MIGRATE names a key and KEYS at once');
      first = i + 1;
      count = argv.length - first;
      break;
    }
    i += skip[word] ?? 0;
  }
  if (first >= argv.length && count > 0) throw new KeysUnknown('MIGRATE needs a key');
  const refs: KeyRef[] = [];
  for (let i = first; i < first + count; i++) refs.push({ pos: i, written: true });
  return refs;
}

/** The argument a locator points at (MOVE's db, COPY's DB value); undefined when an optional one is absent. */
export function locateArg(argv: readonly Buffer[], at: ArgLocator): number | undefined {
  if ('index' in at) return at.index < argv.length ? at.index : undefined;
  const kw = findKeyword(argv, at.keyword, at.startFrom);
  return kw !== undefined && kw + 1 < argv.length ? kw + 1 : undefined;
}

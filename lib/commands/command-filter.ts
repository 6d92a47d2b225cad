/**
 * What the stream → writer pipeline does with one replicated command. Pure: no I/O, no state (the
 * caller tracks the current db through SELECT and the MULTI/EXEC boundaries).
 *
 * Rules, in order:
 * - not in the catalogue → error (never dropped: its keys are unknown, so it can be neither replayed nor re-copied);
 * - PING/REPLCONF → skip; SELECT → select; MULTI/EXEC/DISCARD → transaction; PUBLISH/SPUBLISH → skip 'publish';
 * - FLUSHDB/FLUSHALL/SWAPDB → keyspace (with the dbs it touches, and whether its argv can be replayed as is);
 *   SWAPDB of a db with itself → skip 'no-op';
 * - FUNCTION LOAD/DELETE/FLUSH/RESTORE, SCRIPT LOAD/FLUSH → apply server-wide, whatever the db;
 * - MOVE/COPY … DB n → the db argument rewritten through dbMap when both dbs are selected, else a
 *   re-copy of the written key in the selected db (or skip when neither is);
 * - other commands on an unselected db → skip 'db';
 * - script calls (EVAL, EVALSHA, FCALL from pre-7 sources) → re-copy of their declared keys;
 * - commands known only from the source's COMMAND (modules, newer than Redis 7.0) → re-copy by key: we
 *   cannot vouch that the destination has the module, or replays it the same; no keys → error;
 * - every other catalogued command: all written keys excluded → skip; all keys included → apply as is
 *   (Redis 7 propagates deterministic effects); a mix, or keys the specs cannot list → re-copy of the
 *   included written keys (the caller copies their state from the source with a stamp);
 * - what is applied goes in the form an ordinary client may send (replica-relaxations.ts: a master's
 *   XADD … = n LIMIT m loses the LIMIT); without such a form its written keys are re-copied, and a
 *   command with no keys is an error.
 */
import { asciiLower, commandLabel, lookupCommand } from './catalogue.ts';
import type { Catalogue, CommandSpec } from './catalogue-types.ts';
import { type ExtractedKeys, extractKeys, locateArg } from './key-extraction.ts';
import { isInternalKey, type KeyPredicate, targetDbFor } from './key-filter.ts';
import { type ClientFormLimits, clientForm } from './replica-relaxations.ts';

export interface StreamCommand {
  /** The source db the command runs in (after the stream's SELECTs). */
  db: number;
  argv: Buffer[];
}

export interface FilterContext {
  catalogue: Catalogue;
  /** Source dbs to sync; absent: every db. */
  selectedDbs?: ReadonlySet<number>;
  /** Source db → destination db; dbs not named map to themselves. */
  dbMap?: Readonly<Record<number, number>>;
  /** Which keys travel (makeKeyFilter); redis-dts' internal keys never do, whatever it says. */
  keep: KeyPredicate;
  /** What the destination accepts from a client (replica-relaxations.ts); absent: no limit known. */
  limits?: ClientFormLimits;
}

export type SkipReason =
  | 'db'
  | 'prefix'
  | 'internal'
  | 'publish'
  | 'ping'
  | 'replconf'
  | 'readonly'
  | 'no-op';
export type RecopyReason =
  | 'prefix'
  | 'incomplete'
  | 'db'
  | 'script'
  | 'server-command'
  | 'not-replayable'
  /** The master's form of the command is refused from a client and has no client form (replica-relaxations.ts). */
  | 'replica-only';
export type KeyspaceWhat = 'flushdb' | 'flushall' | 'swapdb';

export type FilterDecision =
  /**
   * Run argv in destination db `db`; `serverWide`: keyless server state, to run on every destination node.
   * `otherDb`: MOVE/COPY … DB also write `writes` in source db `otherDb.db` (and, when `writesHere`, in
   * this db too), so a re-copy ahead of the command in either db must be looked at there.
   */
  | {
      action: 'apply';
      db: number;
      argv: Buffer[];
      keys: Buffer[];
      serverWide: boolean;
      otherDb?: { db: number; writes: Buffer[]; writesHere: boolean };
    }
  | { action: 'skip'; reason: SkipReason }
  /** Copy the current state of `keys` from source db `db` into destination db `targetDb`. */
  | { action: 'recopy'; db: number; targetDb: number; keys: Buffer[]; reason: RecopyReason }
  /**
   * Whole dbs changed. `dbs`: the selected source dbs it touches ('all': every db, none excluded).
   * `replayable`: argv (rewritten through dbMap) can run on the destination in db `db` with the same
   * effect on synced data; otherwise (FLUSHALL with a db selection or mapping, SWAPDB with one side
   * unselected) the caller handles `dbs` itself, e.g. a fresh full sync of each.
   */
  | {
      action: 'keyspace';
      what: KeyspaceWhat;
      dbs: number[] | 'all';
      replayable: boolean;
      db: number;
      argv: Buffer[];
    }
  | { action: 'select'; db: number }
  | { action: 'transaction'; what: 'multi' | 'exec' | 'discard' }
  | { action: 'error'; message: string };

export function filterCommand(entry: StreamCommand, ctx: FilterContext): FilterDecision {
  const { argv, db } = entry;
  const command = lookupCommand(ctx.catalogue, argv);
  if (!command) {
    return error(
      `${label(argv, ctx)} in the replication stream is not in the command catalogue: its keys are unknown, ` +
        'so it can be neither replayed nor re-copied',
    );
  }
  if (command.control) return skip(command.control);
  if (command.select) return selectDecision(argv, ctx);
  if (command.transaction) return { action: 'transaction', what: command.transaction };
  if (command.noReplay) return skip('publish');
  if (command.keyspace) return keyspaceDecision(command.keyspace, entry, ctx);
  if (command.serverWide) return applyAsClient(command, ctx, db, argv, undefined, true);

  const ex = extractKeys(ctx.catalogue, argv, command);
  if (ex.kind === 'unknown') return error(`${label(argv, ctx)}: ${ex.reason}; it was not applied`);
  if (command.dbChange) {
    const at = locateArg(argv, command.dbChange.arg);
    if (at !== undefined) {
      const other = parseDb(argv[at]!);
      if (other === undefined) return error(`${label(argv, ctx)}: its db argument is not a db number`);
      if (other !== db) return dbChangeDecision(command, ex, entry, at, other, ctx);
    }
  }
  if (!selected(ctx, db)) return skip('db');
  if (command.script) return scriptDecision(command, ex, entry, ctx);
  if (command.origin === 'server') return serverCommandDecision(command, ex, entry, ctx);
  if (command.neverReplay) return recopyOrSkip(ex, entry.db, ctx, 'not-replayable');

  if (ex.keys.length === 0)
    return command.write ? applyAsClient(command, ctx, db, argv, ex) : skip('readonly');
  if (ex.writes.length === 0) return skip('readonly');
  if (!ex.complete) return recopyOrSkip(ex, db, ctx, 'incomplete');
  if (ex.keys.every((k) => kept(ctx, k))) return applyAsClient(command, ctx, db, argv, ex);
  return recopyOrSkip(ex, db, ctx, 'prefix');
}

/**
 * Applies argv in the form an ordinary client may send (replica-relaxations.ts); where none exists, its
 * written keys are re-copied, and a command without keys (server-wide or keyless) cannot be, so it stops.
 */
function applyAsClient(
  command: CommandSpec,
  ctx: FilterContext,
  db: number,
  argv: Buffer[],
  ex: ExtractedKeys | undefined,
  serverWide = false,
): FilterDecision {
  const form = clientForm(command.name, argv, ctx.limits ?? {});
  if (form.kind === 'send') return apply(ctx, db, form.argv, ex?.keys ?? [], serverWide);
  if (!ex || ex.writes.length === 0) {
    return error(`${label(argv, ctx)}: ${form.why}, and it has no keys to copy from the source instead`);
  }
  return recopyOrSkip(ex, db, ctx, 'replica-only');
}

/** SELECT n (the caller tracks the db); any case. */
export function isSelect(argv: readonly Buffer[]): boolean {
  return argv.length === 2 && asciiLower(argv[0]!) === 'select';
}

/** The db a SELECT names; undefined when argv is not a valid SELECT. */
export function selectedDb(argv: readonly Buffer[]): number | undefined {
  return isSelect(argv) ? parseDb(argv[1]!) : undefined;
}

function selectDecision(argv: Buffer[], ctx: FilterContext): FilterDecision {
  const n = selectedDb(argv);
  return n === undefined
    ? error(`${label(argv, ctx)} in the replication stream does not name a db number`)
    : { action: 'select', db: n };
}

function keyspaceDecision(what: KeyspaceWhat, entry: StreamCommand, ctx: FilterContext): FilterDecision {
  const { argv, db } = entry;
  const target = targetDbFor(ctx.dbMap, db);
  if (what === 'flushdb') {
    if (!selected(ctx, db)) return skip('db');
    return { action: 'keyspace', what, dbs: [db], replayable: true, db: target, argv };
  }
  if (what === 'flushall') {
    const dbs = ctx.selectedDbs ? [...ctx.selectedDbs].sort((a, b) => a - b) : 'all';
    if (dbs !== 'all' && dbs.length === 0) return skip('db');
    const replayable = dbs === 'all' && identityMap(ctx.dbMap);
    return { action: 'keyspace', what, dbs, replayable, db: target, argv };
  }
  const a = argv[1] && parseDb(argv[1]);
  const b = argv[2] && parseDb(argv[2]);
  if (typeof a !== 'number' || typeof b !== 'number') {
    return error(`${label(argv, ctx)} in the replication stream does not name two db numbers`);
  }
  // SWAPDB n n changes nothing, but the source propagates it; replayed, it would move our marker onto itself.
  if (a === b) return skip('no-op');
  const dbs = [a, b].filter((n) => selected(ctx, n));
  if (dbs.length === 0) return skip('db');
  if (dbs.length === 1) return { action: 'keyspace', what, dbs, replayable: false, db: target, argv };
  const [ta, tb] = [targetDbFor(ctx.dbMap, a), targetDbFor(ctx.dbMap, b)];
  if (ta === tb && a !== b) return error(sameTarget(argv, ctx, a, b, ta));
  const rewritten = [argv[0]!, Buffer.from(String(ta)), Buffer.from(String(tb))];
  return { action: 'keyspace', what, dbs, replayable: true, db: target, argv: rewritten };
}

/** MOVE key n / COPY src dst DB n with n different from the current db. */
function dbChangeDecision(
  command: CommandSpec,
  ex: ExtractedKeys,
  entry: StreamCommand,
  dbArgAt: number,
  other: number,
  ctx: FilterContext,
): FilterDecision {
  const { argv, db } = entry;
  const here = selected(ctx, db);
  const there = selected(ctx, other);
  if (!here && !there) return skip('db');
  const keptWrites = uniqueKeys(ex.writes.filter((k) => kept(ctx, k)));
  if (keptWrites.length === 0) return skip(ex.writes.every(isInternalKey) ? 'internal' : 'prefix');
  if (here && there && ex.complete && ex.keys.every((k) => kept(ctx, k))) {
    const [from, to] = [targetDbFor(ctx.dbMap, db), targetDbFor(ctx.dbMap, other)];
    if (from === to) return error(sameTarget(argv, ctx, db, other, from));
    const rewritten = [...argv];
    rewritten[dbArgAt] = Buffer.from(String(to));
    const writesHere = command.dbChange?.writesIn === 'both';
    return {
      action: 'apply',
      db: from,
      argv: rewritten,
      keys: ex.keys,
      serverWide: false,
      otherDb: { db: other, writes: uniqueKeys(ex.writes), writesHere },
    };
  }
  const reason: RecopyReason = here && there ? 'prefix' : 'db';
  // COPY changes only the other db; MOVE changes both, but one of them is unselected here.
  if (command.dbChange?.writesIn === 'target')
    return there ? recopy(ctx, other, keptWrites, reason) : skip('db');
  if (here && there) return error(`${label(argv, ctx)}: cannot replay it, and re-copying covers one db only`);
  return recopy(ctx, here ? db : other, keptWrites, reason);
}

function scriptDecision(
  command: CommandSpec,
  ex: ExtractedKeys,
  entry: StreamCommand,
  ctx: FilterContext,
): FilterDecision {
  if (command.flags.includes('readonly') || (ex.keys.length > 0 && ex.writes.length === 0)) {
    return skip('readonly');
  }
  if (ex.keys.length === 0) {
    return error(
      `${label(entry.argv, ctx)} declares no keys, so what it wrote is unknown (script calls are ` +
        're-copied by their declared keys)',
    );
  }
  return recopyOrSkip(ex, entry.db, ctx, 'script');
}

function serverCommandDecision(
  command: CommandSpec,
  ex: ExtractedKeys,
  entry: StreamCommand,
  ctx: FilterContext,
): FilterDecision {
  const name = label(entry.argv, ctx);
  if (ex.keys.length === 0) {
    if (command.flags.includes('readonly')) return skip('readonly');
    return error(
      `${name} is known only from the source's COMMAND (a module's or a newer Redis'), and has no keys to re-copy`,
    );
  }
  if (!ex.complete)
    return error(`${name}: its key specs do not list every key it touches; it was not applied`);
  if (ex.writes.length === 0) return skip('readonly');
  return recopyOrSkip(ex, entry.db, ctx, 'server-command');
}

function recopyOrSkip(
  ex: ExtractedKeys,
  db: number,
  ctx: FilterContext,
  reason: RecopyReason,
): FilterDecision {
  const keptWrites = uniqueKeys(ex.writes.filter((k) => kept(ctx, k)));
  if (keptWrites.length === 0) return skip(ex.writes.every(isInternalKey) ? 'internal' : 'prefix');
  return recopy(ctx, db, keptWrites, reason);
}

function apply(
  ctx: FilterContext,
  db: number,
  argv: Buffer[],
  keys: Buffer[],
  serverWide: boolean,
): FilterDecision {
  return { action: 'apply', db: targetDbFor(ctx.dbMap, db), argv, keys, serverWide };
}

function recopy(ctx: FilterContext, db: number, keys: Buffer[], reason: RecopyReason): FilterDecision {
  return { action: 'recopy', db, targetDb: targetDbFor(ctx.dbMap, db), keys, reason };
}

function skip(reason: SkipReason): FilterDecision {
  return { action: 'skip', reason };
}

function error(message: string): FilterDecision {
  return { action: 'error', message };
}

function kept(ctx: FilterContext, key: Buffer): boolean {
  return !isInternalKey(key) && ctx.keep(key);
}

function selected(ctx: FilterContext, db: number): boolean {
  return ctx.selectedDbs === undefined || ctx.selectedDbs.has(db);
}

function identityMap(dbMap: FilterContext['dbMap']): boolean {
  return Object.entries(dbMap ?? {}).every(([from, to]) => Number(from) === to);
}

function parseDb(b: Buffer): number | undefined {
  const s = b.toString('latin1');
  return /^\d{1,9}$/.test(s) ? Number(s) : undefined;
}

/** Keys without repeats (byte-wise), in their first order. */
export function uniqueKeys(keys: Buffer[]): Buffer[] {
  const seen = new Set<string>();
  return keys.filter((k) => {
    const id = k.toString('latin1');
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

function label(argv: readonly Buffer[], ctx: FilterContext): string {
  return commandLabel(argv, ctx.catalogue);
}

function sameTarget(argv: readonly Buffer[], ctx: FilterContext, a: number, b: number, to: number): string {
  return `${label(argv, ctx)}: source dbs ${a} and ${b} both map to destination db ${to}, so it cannot be replayed`;
}

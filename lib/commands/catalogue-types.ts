/**
 * The shapes of the command catalogue. A command's keys are described the way Redis 7 key specs do it
 * (`COMMAND DOCS`/`COMMAND` "key specifications"): where the search for keys begins, then how keys are
 * found from there. Keeping Redis' own model means a live server's reply and the checked-in table are
 * the same data, and module commands need no code.
 */

/** Where the search for a spec's keys starts in argv. */
export type BeginSearch =
  | { type: 'index'; index: number }
  /** First occurrence of `keyword` (case-insensitive) from `startFrom`; a negative startFrom searches backwards from the end. */
  | { type: 'keyword'; keyword: string; startFrom: number }
  | { type: 'unknown' };

/** How keys are found from the begin-search position. */
export type FindKeys =
  /**
   * lastKey relative to the begin position (≥ 0), or from the end (< 0); with lastKey -1 and limit > 1,
   * only the first 1/limit of the remaining args are keys (XREADGROUP … STREAMS k1 k2 id1 id2).
   */
  | { type: 'range'; lastKey: number; keyStep: number; limit: number }
  /** The arg at begin+keyNumIdx counts the keys; the first is at begin+firstKey. */
  | { type: 'keynum'; keyNumIdx: number; firstKey: number; keyStep: number }
  | { type: 'unknown' };

export interface KeySpec {
  /** Redis' key-spec flags: RO/RW/OW/RM, access/update/insert/delete, not_key, incomplete, variable_flags. */
  flags: readonly string[];
  begin: BeginSearch;
  find: FindKeys;
}

/** What a server's COMMAND reply says about one command or subcommand; the checked-in table holds exactly this. */
export interface CommandInfo {
  /** Lower case; a subcommand is `container|sub`, e.g. `xgroup|create`. */
  name: string;
  arity: number;
  /** COMMAND flags: write, readonly, movablekeys, module, … */
  flags: readonly string[];
  /** Absent when the server predates key specs (Redis < 7). */
  keySpecs?: readonly KeySpec[];
  /** first/last/step of servers without key specs (0 first: no keys at fixed positions). */
  legacyKeys?: { first: number; last: number; step: number };
  /** Full names of the subcommands of a container command (XGROUP, FUNCTION, …). */
  subcommands?: readonly string[];
}

/** An argument position: a fixed index, or the argument after a keyword searched from startFrom. */
export type ArgLocator = { index: number } | { keyword: string; startFrom: number };

/**
 * What redis-dts does with a command beyond its keys. These are decisions of ours, not server data,
 * so they live in catalogue-traits.ts and are attached to every catalogue entry by name.
 */
export interface CommandTraits {
  /** Changes whole databases: the caller re-syncs or replays it per db. */
  keyspace?: 'flushdb' | 'flushall' | 'swapdb';
  /**
   * The command writes into another db named by an argument (MOVE key db, COPY … DB db). `writesIn`:
   * 'both' (the key leaves the current db and appears in the other) or 'target' (only the other db changes).
   */
  dbChange?: { arg: ArgLocator; writesIn: 'both' | 'target' };
  /** Never replayed (PUBLISH, SPUBLISH): the caller counts it. */
  noReplay?: boolean;
  /** SELECT: changes the db of the commands that follow. */
  select?: boolean;
  transaction?: 'multi' | 'exec' | 'discard';
  /** A script call: replayed by re-copying the keys it declares, never run on the destination. */
  script?: boolean;
  /** FUNCTION LOAD/DELETE/FLUSH/RESTORE. */
  function?: boolean;
  /** Server-wide, keyless state (functions, the script cache): applied on every destination node, any db. */
  serverWide?: boolean;
  /** Replication chatter in the stream, never data. */
  control?: 'ping' | 'replconf';
  /**
   * Key specs that cannot locate the keys (SORT's STORE and BY/GET; MIGRATE's KEYS): a named procedure
   * in key-extraction.ts parses the arguments like the server does.
   */
  keysProc?: 'sort' | 'migrate';
  /** Must never run on the destination (it acts on a third server): its keys are re-copied instead. */
  neverReplay?: boolean;
}

export interface CommandSpec extends CommandInfo, CommandTraits {
  /**
   * 'table': a Redis 7.0 core command (the checked-in table knows it), replayed as is. 'server': known only
   * from the live COMMAND reply (a module's, or newer than 7.0): its effect is re-copied by key, because
   * the destination may lack the module or version, and we cannot vouch for its replay.
   */
  origin: 'table' | 'server';
  write: boolean;
}

export interface Catalogue {
  /** By lower-case full name (`set`, `xgroup|create`). */
  commands: ReadonlyMap<string, CommandSpec>;
  /** 'server': key specs read from the server's COMMAND reply (merged with the table); 'table': the table alone. */
  source: 'server' | 'table';
  /** Why the server's reply was not used (COMMAND renamed/denied, unreadable reply). */
  fallbackReason?: string;
}

import type { CommandTraits } from './catalogue-types.ts';

/**
 * redis-dts' own decisions per command (see CommandTraits), by lower-case full name. Everything about
 * keys comes from key specs; this table only says what the stream → writer pipeline does differently.
 */
export const COMMAND_TRAITS: Readonly<Record<string, CommandTraits>> = {
  flushdb: { keyspace: 'flushdb' },
  flushall: { keyspace: 'flushall' },
  swapdb: { keyspace: 'swapdb' },
  move: { dbChange: { arg: { index: 2 }, writesIn: 'both' } },
  copy: { dbChange: { arg: { keyword: 'DB', startFrom: 3 }, writesIn: 'target' } },

  publish: { noReplay: true },
  spublish: { noReplay: true },

  select: { select: true },
  multi: { transaction: 'multi' },
  exec: { transaction: 'exec' },
  discard: { transaction: 'discard' },

  ping: { control: 'ping' },
  replconf: { control: 'replconf' },

  // Redis 7 propagates scripts as their effects; older sources may still send the call itself, which
  // the destination may not be able to run (EVALSHA without the script) or may run differently.
  eval: { script: true },
  evalsha: { script: true },
  eval_ro: { script: true },
  evalsha_ro: { script: true },
  fcall: { script: true },
  fcall_ro: { script: true },

  'function|load': { function: true, serverWide: true },
  'function|delete': { function: true, serverWide: true },
  'function|flush': { function: true, serverWide: true },
  'function|restore': { function: true, serverWide: true },
  'script|load': { serverWide: true },
  'script|flush': { serverWide: true },

  sort: { keysProc: 'sort' },
  migrate: { keysProc: 'migrate', neverReplay: true },
};

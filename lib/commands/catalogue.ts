import { parseCommandReply } from './catalogue-reply.ts';
import { tableCommands } from './catalogue-table.ts';
import { COMMAND_TRAITS } from './catalogue-traits.ts';
import type { Catalogue, CommandInfo, CommandSpec } from './catalogue-types.ts';

export type {
  ArgLocator,
  BeginSearch,
  Catalogue,
  CommandInfo,
  CommandSpec,
  CommandTraits,
  FindKeys,
  KeySpec,
} from './catalogue-types.ts';

/** Anything that can send COMMAND: an ioredis Redis or Cluster client. */
export interface CommandCaller {
  call(command: string, ...args: string[]): Promise<unknown>;
}

/**
 * The catalogue of the server the stream comes from: its own COMMAND reply (key specs for every
 * command it has, modules' included), merged with the checked-in Redis 7.0 table. Falls back to the
 * table alone when COMMAND is renamed, denied or unreadable; never throws for those.
 *
 * Merge rules: a server with key specs (7.0+) is the authority for every command it lists; a server
 * without (< 7) only adds the commands the table does not know, described by first/last/step. Table
 * commands the server does not list stay (a renamed command may still be in an older stream).
 */
export async function loadCatalogue(client: CommandCaller): Promise<Catalogue> {
  let live: CommandInfo[];
  try {
    live = parseCommandReply(await client.call('COMMAND'));
  } catch (e) {
    return buildCatalogue(tableCommands(), undefined, `COMMAND failed: ${(e as Error).message ?? String(e)}`);
  }
  if (live.length === 0) return buildCatalogue(tableCommands(), undefined, 'COMMAND returned no commands');
  return buildCatalogue(tableCommands(), live);
}

let tableOnly: Catalogue | undefined;

/** The checked-in table alone (built once). */
export function tableCatalogue(): Catalogue {
  tableOnly ??= buildCatalogue(tableCommands());
  return tableOnly;
}

/** Pure merge of the table and a parsed COMMAND reply (see loadCatalogue); exported for tests and tools. */
export function buildCatalogue(
  table: readonly CommandInfo[],
  live?: readonly CommandInfo[],
  fallbackReason?: string,
): Catalogue {
  const known = new Map(table.map((c) => [c.name, c]));
  const merged = new Map<string, CommandInfo>(known);
  for (const info of live ?? []) {
    if (info.keySpecs !== undefined || !known.has(info.name)) merged.set(info.name, info);
  }
  const commands = new Map<string, CommandSpec>();
  for (const [name, info] of merged) {
    const fromTable = known.has(name) && !info.flags.includes('module');
    commands.set(name, {
      ...info,
      ...COMMAND_TRAITS[name],
      origin: fromTable ? 'table' : 'server',
      write: info.flags.includes('write'),
    });
  }
  const catalogue: Catalogue = { commands, source: live ? 'server' : 'table' };
  if (fallbackReason) catalogue.fallbackReason = fallbackReason;
  return catalogue;
}

/**
 * The catalogue entry argv names: the subcommand entry for container commands (`XGROUP CREATE` →
 * `xgroup|create`). Undefined when the command, or the container's subcommand, is not catalogued.
 * Names are matched ASCII case-insensitively, as the server does.
 */
export function lookupCommand(catalogue: Catalogue, argv: readonly Buffer[]): CommandSpec | undefined {
  const first = argv[0];
  if (!first) return undefined;
  const spec = catalogue.commands.get(asciiLower(first));
  if (!spec?.subcommands || spec.subcommands.length === 0) return spec;
  const sub = argv[1];
  return sub ? catalogue.commands.get(`${spec.name}|${asciiLower(sub)}`) : undefined;
}

/** The printable name of argv's command, for messages (`XGROUP CREATE`, `MYMODULE.CMD`). */
export function commandLabel(argv: readonly Buffer[], catalogue?: Catalogue): string {
  const container = argv[0] && catalogue?.commands.get(asciiLower(argv[0]))?.subcommands?.length;
  const words = argv.slice(0, container ? 2 : 1);
  const label = words.map(printable).join(' ');
  return label || '(empty command)';
}

/** Looked up for every command of the stream: plain ASCII (nearly every name) takes the built-in lowering. */
export function asciiLower(b: Buffer): string {
  let high = false;
  for (let i = 0; i < b.length; i++) if (b[i]! > 127) high = true;
  if (!high) return b.toString('latin1').toLowerCase();
  // toLowerCase would also lower Latin-1 letters (À → à): only A-Z may change, as the server folds them.
  let s = '';
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    s += String.fromCharCode(c >= 65 && c <= 90 ? c + 32 : c);
  }
  return s;
}

function printable(b: Buffer): string {
  const s = b
    .subarray(0, 64)
    .toString('latin1')
    .replace(/[a-z]+/g, (w) => w.toUpperCase());
  const safe = s.replace(
    /[\x00-\x1f\x7f-\xff]/g,
    (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
  return b.length > 64 ? `${safe}…` : safe;
}

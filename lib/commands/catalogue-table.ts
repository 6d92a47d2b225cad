import type { CommandTableFile } from './catalogue-table-file.ts';
import type { CommandInfo } from './catalogue-types.ts';
import table from './data/redis-7.0-commands.json' with { type: 'json' };

/** The checked-in Redis 7.0 command table (see catalogue-table-file.ts for how it is made). */
export function tableCommands(): readonly CommandInfo[] {
  return (table as unknown as CommandTableFile).commands;
}

/**
 * Whether an ACL user's command rules (`ACL GETUSER … commands`, e.g. "+@all -psync") allow `command`,
 * for servers without ACL DRYRUN (Redis 6). Rules apply left to right, as Redis applies them;
 * subcommand rules (`+config|get`) do not concern the whole commands checked here and are skipped.
 */
export function aclRulesAllow(rules: string, command: string, categories: readonly string[]): boolean {
  const cmd = command.toLowerCase();
  let allowed = false;
  for (const token of rules.trim().split(/\s+/)) {
    const t = token.toLowerCase();
    if (t === 'allcommands' || t === '+@all') allowed = true;
    else if (t === 'nocommands' || t === '-@all') allowed = false;
    else if (t.startsWith('+@') || t.startsWith('-@')) {
      if (categories.includes(t.slice(2))) allowed = t[0] === '+';
    } else if (t === `+${cmd}`) allowed = true;
    else if (t === `-${cmd}`) allowed = false;
  }
  return allowed;
}

/** ACL categories of the replication commands (the same in Redis 6 and 7). */
export const REPLICATION_COMMAND_CATEGORIES: readonly string[] = ['admin', 'slow', 'dangerous'];

import type { Redis } from 'ioredis';
import { classifyAdminError } from '../redis/admin-client.ts';
import { aclRulesAllow, REPLICATION_COMMAND_CATEGORIES } from './acl-rules.ts';
import { combineNodeResults } from './cluster-nodes.ts';
import { addressOf, isCommandUnavailable, listWords } from './server-facts.ts';
import { type CheckResult, nodesOf, type PrecheckCheck, type PrecheckSide, sideOf } from './types.ts';

/** What incremental sync sends to the source, with the arguments it sends them with. */
const REPLICATION_COMMANDS: readonly (readonly [string, ...string[]])[] = [
  ['PSYNC', '?', '-1'],
  ['REPLCONF', 'capa', 'eof'],
];

export const psyncPermission: PrecheckCheck = {
  id: 'source-psync',
  title: 'PSYNC permitted on the source',
  needs: ['source'],
  notApplicable: (spec) =>
    spec.syncType === 'full'
      ? 'syncType full does not replicate, so PSYNC is not used'
      : spec.incremental.reader === 'notifications'
        ? 'incremental.reader notifications reads keyspace events, so PSYNC is not used'
        : undefined,
  // PSYNC itself is never sent: it would make the source fork for an RDB, the very cost the check is
  // meant to foresee. The server's command table and its ACL answer the question instead.
  async run(ctx): Promise<CheckResult> {
    const source = sideOf(ctx, 'source');
    if (!source.topology) return psyncVerdict(source);
    // One PSYNC stream per master, and ACL users and rename-command are per node, not per cluster.
    const masters = nodesOf(source);
    const results: { node: PrecheckSide; result: CheckResult }[] = [];
    for (const node of masters) results.push({ node, result: await psyncVerdict(node) });
    return combineNodeResults(
      results,
      () =>
        `on every master (${masters.map((m) => addressOf(m.ep)).join(', ')}), one PSYNC stream each: ` +
        results[0]!.result.detail,
    );
  },
};

async function psyncVerdict(source: PrecheckSide): Promise<CheckResult> {
  const user = source.ep.username ?? 'default';
  const names = REPLICATION_COMMANDS.map(([name]) => name);

  const table = await commandsInTable(source.client, names);
  if ('missing' in table && table.missing.length > 0) {
    return {
      status: 'failed',
      detail: `${listWords(table.missing)} ${table.missing.length === 1 ? 'is' : 'are'} renamed or disabled on the source (rename-command): incremental sync cannot read the replication stream`,
      fix: `remove the rename-command lines for ${listWords(table.missing)} from the source's redis.conf and restart it; where the provider disables them (ElastiCache, MemoryDB), use --incremental-reader notifications (keyspace events, no PSYNC needed) or --sync-type full`,
    };
  }
  const present = REPLICATION_COMMANDS.filter(
    ([name]) => !('missing' in table) || !table.missing.includes(name),
  );
  const acl = await aclVerdict(source.client, user, source.info.versionNum, present);
  if ('denied' in acl && acl.denied.length > 0) {
    return {
      status: 'failed',
      detail: `ACL user '${user}' may not run ${listWords(acl.denied)} on the source`,
      fix: `grant ${acl.denied.length === 1 ? 'it' : 'them'}: ACL SETUSER ${user} ${acl.denied.map((c) => `+${c.toLowerCase()}`).join(' ')} (or use a user with replication permission)`,
    };
  }
  const unknown = ['unknown' in table ? table.unknown : undefined, 'unknown' in acl ? acl.unknown : undefined]
    .filter((r): r is string => r !== undefined)
    .join('; ');
  if (unknown) {
    return {
      status: 'warning',
      detail: `could not verify that ACL user '${user}' may run ${listWords(names)}: ${unknown}`,
      fix: `make sure the user has +psync +replconf (ACL SETUSER ${user} +psync +replconf), or run the precheck as a user allowed to run COMMAND INFO and ACL DRYRUN`,
    };
  }
  return {
    status: 'passed',
    detail: `${listWords(names)} are enabled (COMMAND INFO) and user '${user}' may run them (${'how' in acl ? acl.how : 'ACL'}); PSYNC itself was not sent, so the source did not start a full resync`,
  };
}

/** Commands missing from the server's table: `rename-command X ""` (or renamed away) removes them. */
async function commandsInTable(
  client: Redis,
  names: readonly string[],
): Promise<{ missing: string[] } | { unknown: string }> {
  let reply: unknown;
  try {
    reply = await client.call('COMMAND', 'INFO', ...names);
  } catch (e) {
    if (isCommandUnavailable(e)) return { unknown: `COMMAND INFO is not available (${firstLine(e)})` };
    throw classifyAdminError(client, e, 'COMMAND INFO');
  }
  const entries = Array.isArray(reply) ? reply : [];
  return { missing: names.filter((_, i) => entries[i] === null || entries[i] === undefined) };
}

async function aclVerdict(
  client: Redis,
  user: string,
  versionNum: number,
  commands: readonly (readonly [string, ...string[]])[],
): Promise<{ denied: string[]; how: string } | { unknown: string }> {
  // Before Redis 6 there are no ACL users: whoever logs in may run every enabled command.
  if (versionNum > 0 && versionNum < 60000) return { denied: [], how: 'no ACL before Redis 6' };
  try {
    if (versionNum >= 70000) {
      const denied: string[] = [];
      for (const [name, ...args] of commands) {
        const reply = await client.call('ACL', 'DRYRUN', user, name, ...args);
        if (String(reply) !== 'OK') denied.push(name);
      }
      return { denied, how: 'ACL DRYRUN' };
    }
    const reply = await client.call('ACL', 'GETUSER', user);
    const fields = Array.isArray(reply) ? reply.map((v) => (Array.isArray(v) ? v : String(v))) : [];
    const at = fields.indexOf('commands');
    const rules = at >= 0 ? fields[at + 1] : undefined;
    if (typeof rules !== 'string') return { unknown: 'ACL GETUSER gave no command rules' };
    return {
      denied: commands
        .map(([name]) => name)
        .filter((name) => !aclRulesAllow(rules, name, REPLICATION_COMMAND_CATEGORIES)),
      how: 'ACL GETUSER',
    };
  } catch (e) {
    if (isCommandUnavailable(e)) return { unknown: `ACL is not available to this user (${firstLine(e)})` };
    throw classifyAdminError(client, e, 'ACL');
  }
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e))
    .split('\n')[0]!
    .replace(/, with args beginning with:.*$/, '');
}

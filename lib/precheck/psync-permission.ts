import type { Redis } from 'ioredis';
import { classifyAdminError } from '../redis/admin-client.ts';
import { type RedisEndpoint, replicationCommand } from '../redis/endpoint.ts';
import { hasAcl, hasAclDryrun } from '../redis/server-versions.ts';
import { renamedPsyncFix } from '../replication/without-psync.ts';
import { aclRulesAllow, REPLICATION_COMMAND_CATEGORIES } from './acl-rules.ts';
import { combineNodeResults } from './cluster-nodes.ts';
import {
  type ProbeOutcome,
  probeReplicationCommand,
  type ReplicationCommand,
} from './replication-command-probe.ts';
import { addressOf, isCommandUnavailable, listWords } from './server-facts.ts';
import { type CheckResult, nodesOf, type PrecheckCheck, type PrecheckSide, sideOf } from './types.ts';

/** What incremental sync sends to the source, with the arguments it sends them with. */
const REPLICATION_COMMANDS: readonly (readonly [ReplicationCommand, ...string[]])[] = [
  ['PSYNC', '?', '-1'],
  ['REPLCONF', 'capa', 'eof'],
];

export const psyncPermission: PrecheckCheck = {
  id: 'source-psync',
  title: 'PSYNC permitted on the source',
  needs: ['source'],
  notApplicable: (spec) =>
    spec.syncType === 'full' && spec.fullSync.reader !== 'rdb'
      ? 'syncType full does not replicate, so PSYNC is not used'
      : spec.incremental.reader === 'notifications'
        ? 'incremental.reader notifications reads keyspace events, so PSYNC is not used'
        : undefined,
  // PSYNC itself is never sent: it would make the source fork for an RDB, the very cost the check is
  // meant to foresee. A call the server refuses before running it, and its ACL, answer instead.
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

/** PSYNC and REPLCONF on one node, as the item judges them (also asked by the full-sync-reader item). */
export async function psyncVerdict(source: PrecheckSide): Promise<CheckResult> {
  const user = source.ep.username ?? 'default';
  const names = REPLICATION_COMMANDS.map(([command]) => command);
  const sent = (command: ReplicationCommand) => replicationCommand(source.ep, command);

  const problems: { detail: string; fix: string }[] = [];
  for (const command of names) {
    const outcome = await probeReplicationCommand(source.client, command, sent(command));
    if (outcome.is !== 'it') problems.push(probeProblem(source.ep, command, outcome));
  }
  if (problems.length > 0) {
    return {
      status: 'failed',
      detail: problems.map((p) => p.detail).join('; '),
      fix: [...new Set(problems.map((p) => p.fix))].join('; '),
    };
  }
  // ACL DRYRUN looks the command up by the name it has now; ACL rules (GETUSER) keep the original name.
  const acl = await aclVerdict(
    source.client,
    user,
    source.info.versionNum,
    REPLICATION_COMMANDS.map(([command, ...args]) => ({ command, sentAs: sent(command), args })),
  );
  if ('denied' in acl && acl.denied.length > 0) {
    return {
      status: 'failed',
      detail: `ACL user '${user}' may not run ${listWords(acl.denied)} on the source`,
      fix: `grant ${acl.denied.length === 1 ? 'it' : 'them'}: ACL SETUSER ${user} ${acl.denied.map((c) => `+${c.toLowerCase()}`).join(' ')} (or use a user with replication permission)`,
    };
  }
  const renamed = names
    .filter((c) => sent(c) !== c)
    .map((c) => `${c} as '${sent(c)}'`)
    .join(', ');
  const known = `${listWords(names)} answer as themselves${renamed ? ` (${renamed})` : ''}`;
  if ('unknown' in acl) {
    return {
      status: 'warning',
      detail: `${known}, but could not verify that ACL user '${user}' may run them: ${acl.unknown}`,
      fix: `make sure the user has +psync +replconf (ACL SETUSER ${user} +psync +replconf), or run the precheck as a user allowed to run ACL DRYRUN`,
    };
  }
  return {
    status: 'passed',
    detail: `${known} and user '${user}' may run them (${acl.how}); PSYNC itself was not sent, so the source did not start a full resync`,
  };
}

/** Why a name is not the replication command it should be, and what to do. */
function probeProblem(
  ep: RedisEndpoint,
  command: ReplicationCommand,
  outcome: Exclude<ProbeOutcome, { is: 'it' }>,
): { detail: string; fix: string } {
  const given = command === 'PSYNC' ? ep.replicationCommands?.psync : ep.replicationCommands?.replconf;
  const flag = command === 'PSYNC' ? '--source-psync-command' : '--source-replconf-command';
  if (outcome.is === 'unknown') {
    return {
      detail:
        given === undefined
          ? `${command} is renamed or disabled on the source (rename-command): incremental sync cannot read the replication stream (ElastiCache and MemoryDB disable it unless AWS support enables it under another name)`
          : `the source knows no command '${given}' (${flag}): the name is wrong, or ${command} is disabled there`,
      fix: renamedPsyncFix(command, given),
    };
  }
  const name = given ?? command;
  return {
    detail: `'${name}'${given !== undefined ? ` (${flag})` : ''} is not ${command} on the source: it answered ${outcome.command ? `as ${outcome.command}` : `'${outcome.reply}'`}`,
    fix: `give ${flag} the name ${command} answers to on the source`,
  };
}

async function aclVerdict(
  client: Redis,
  user: string,
  versionNum: number,
  commands: readonly { command: ReplicationCommand; sentAs: string; args: readonly string[] }[],
): Promise<{ denied: string[]; how: string } | { unknown: string }> {
  // Before Redis 6 there are no ACL users: whoever logs in may run every enabled command.
  if (!hasAcl(versionNum)) return { denied: [], how: 'no ACL before Redis 6' };
  try {
    if (hasAclDryrun(versionNum)) {
      const denied: string[] = [];
      for (const { command, sentAs, args } of commands) {
        const reply = await client.call('ACL', 'DRYRUN', user, sentAs, ...args);
        if (String(reply) !== 'OK') denied.push(command);
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
        .map(({ command }) => command)
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

import { combineNodeResults } from './cluster-nodes.ts';
import { addressOf } from './server-facts.ts';
import { type CheckResult, nodesOf, type PrecheckCheck, type PrecheckSide, sideOf } from './types.ts';

export const evictionPolicy: PrecheckCheck = {
  id: 'target-eviction',
  title: 'Destination eviction policy',
  needs: ['target'],
  async run(ctx) {
    const target = sideOf(ctx, 'target');
    if (!target.topology) return judgePolicy(target);
    // Each master evicts on its own, so one master with an evicting policy loses keys of its slots.
    const masters = nodesOf(target);
    const results: { node: PrecheckSide; result: CheckResult }[] = [];
    for (const node of masters) results.push({ node, result: await judgePolicy(node) });
    return combineNodeResults(
      results,
      () =>
        `maxmemory-policy is noeviction on every master (${masters.map((m) => addressOf(m.ep)).join(', ')}): ` +
        'a full master refuses writes with an error',
    );
  },
};

async function judgePolicy(node: PrecheckSide): Promise<CheckResult> {
  // INFO memory reports the policy even where CONFIG is disabled.
  const policy = node.fields.maxmemory_policy ?? (await node.config('maxmemory-policy'));
  if (policy === undefined) {
    return {
      status: 'warning',
      detail: 'the destination reports no maxmemory-policy (neither INFO memory nor CONFIG GET)',
      fix: "make sure the destination's maxmemory-policy is noeviction (in its configuration or parameter group)",
    };
  }
  if (policy === 'noeviction') {
    return {
      status: 'passed',
      detail: 'maxmemory-policy is noeviction: a full destination refuses writes with an error',
    };
  }
  const limit =
    node.info.maxmemory > 0 ? 'when it reaches maxmemory' : 'once a maxmemory is set (none is now)';
  return {
    status: 'warning',
    detail:
      `maxmemory-policy is ${policy}: ${limit} the destination silently evicts keys to make room, so copied ` +
      'keys can disappear without any error and the destination ends up with fewer keys than the source',
    fix: "set maxmemory-policy noeviction on the destination (CONFIG SET maxmemory-policy noeviction, or the provider's parameter group)",
  };
}

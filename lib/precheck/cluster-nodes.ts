import { keySlot, tagForSlots } from '../redis/cluster-slot.ts';
import { addressOf } from './server-facts.ts';
import { type CheckResult, nodesOf, type PrecheckSide } from './types.ts';

/** The node that serves `key`: its slot's master on a cluster, else the server itself. */
export function nodeForKey(side: PrecheckSide, key: string | Buffer): PrecheckSide {
  const { topology } = side;
  return topology ? nodesOf(side)[topology.slotOwner[keySlot(key)]!]! : side;
}

/**
 * One probe key per node, each sent to the node that serves it: `base` on a standalone server, and
 * `base:{tag}` per master of a cluster, the tag chosen among that master's slots (as heartbeat keys are).
 */
export function probeKeysByNode(side: PrecheckSide, base: string): { node: PrecheckSide; key: string }[] {
  const { topology } = side;
  if (!topology) return [{ node: side, key: base }];
  return topology.masters.map((_, index) => {
    const key = `${base}:{${tagForSlots((slot) => topology.slotOwner[slot] === index)}}`;
    // Routed by the key's own slot: a prefix with a brace in it would pick the hash tag itself.
    return { node: nodeForKey(side, key), key };
  });
}

/**
 * One verdict from per-master verdicts: the worst status, the details of the masters that did not pass
 * (each named), and their distinct fixes. `passed` words the verdict when every master passed.
 */
export function combineNodeResults(
  results: readonly { node: PrecheckSide; result: CheckResult }[],
  passed: () => string,
): CheckResult {
  const bad = results.filter((r) => r.result.status !== 'passed');
  if (bad.length === 0) return { status: 'passed', detail: passed() };
  const status = bad.some((r) => r.result.status === 'failed') ? 'failed' : 'warning';
  const fixes = [...new Set(bad.map((r) => r.result.fix).filter((f): f is string => f !== undefined))];
  return {
    status,
    detail: bad.map((r) => `${addressOf(r.node.ep)}: ${r.result.detail}`).join('; '),
    ...(fixes.length > 0 ? { fix: fixes.join('; ') } : {}),
  };
}

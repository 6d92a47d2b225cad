import { setTimeout as sleep } from 'node:timers/promises';
import { isDtsError } from '../errors.ts';
import { KeyspaceSubscriber } from '../notifications/keyspace-subscriber.ts';
import { missingNotifyFlags, notifyConfigFix, withNeededFlags } from '../notifications/notify-config.ts';
import { combineNodeResults, probeKeysByNode } from './cluster-nodes.ts';
import { addressOf, isCommandUnavailable, listWords, precheckKey, TEMP_KEY_PREFIX } from './server-facts.ts';
import { type CheckResult, type PrecheckCheck, type PrecheckSide, sideOf } from './types.ts';

/** How long the probe waits for its events to come back. */
const PROBE_WAIT_MS = 2000;

/**
 * The notification reader's requirement: notify-keyspace-events with K and A. Read with CONFIG GET and,
 * where it lacks them and the user opted in (--set-notify-keyspace-events), set with CONFIG SET; where
 * CONFIG is refused (managed services), a probe key is written and each class of event it should raise
 * is awaited on a keyspace subscription, so the verdict is what the server does, not a guess.
 */
export const notifyKeyspaceEvents: PrecheckCheck = {
  id: 'source-notify-keyspace-events',
  title: 'Keyspace events published by the source',
  needs: ['source'],
  listedFor: (spec) => spec.incremental.reader === 'notifications',
  notApplicable: (spec) => (spec.syncType === 'full' ? 'syncType full has no incremental phase' : undefined),
  async run(ctx) {
    const source = sideOf(ctx, 'source');
    const set = ctx.spec.incremental.setNotifyKeyspaceEvents;
    const probes = probeKeysByNode(source, precheckKey(`${TEMP_KEY_PREFIX}notify:`));
    const results: { node: PrecheckSide; result: CheckResult }[] = [];
    for (const { node, key } of probes) results.push({ node, result: await nodeVerdict(node, key, set) });
    if (results.length === 1) return results[0]!.result;
    return combineNodeResults(
      results,
      () =>
        `on every master (${probes.map((p) => addressOf(p.node.ep)).join(', ')}): ${results[0]!.result.detail}`,
    );
  },
};

async function nodeVerdict(node: PrecheckSide, probeKey: string, set: boolean): Promise<CheckResult> {
  const value = await node.config('notify-keyspace-events');
  if (value === undefined) return probeVerdict(node, probeKey);
  const missing = missingNotifyFlags(value);
  if (missing === '') {
    return {
      status: 'passed',
      detail: `notify-keyspace-events is "${value}": every key change is published`,
    };
  }
  if (!set) {
    return {
      status: 'failed',
      detail: `notify-keyspace-events is "${value}", without ${listWords([...missing])}: changes to keys would not be published, so the notification reader would miss them`,
      fix: notifyConfigFix(value),
    };
  }
  const wanted = withNeededFlags(value);
  try {
    await node.client.call('CONFIG', 'SET', 'notify-keyspace-events', wanted);
  } catch (e) {
    return {
      status: 'failed',
      detail: `notify-keyspace-events is "${value}" and CONFIG SET to "${wanted}" was refused (${(e as Error).message})`,
      fix: notifyConfigFix(value),
    };
  }
  return {
    status: 'passed',
    detail: `notify-keyspace-events was "${value}"; set to "${wanted}" (--set-notify-keyspace-events). Not written to redis.conf: a restart of the source undoes it (CONFIG REWRITE keeps it)`,
  };
}

/** A write of each type whose event class the reader needs, and the event each one must raise. */
const PROBE_STEPS: readonly { argv: (key: string) => string[]; event: string; flag: string }[] = [
  { argv: (k) => ['SET', k, '1'], event: 'set', flag: '$' },
  { argv: (k) => ['PEXPIRE', k, '60000'], event: 'expire', flag: 'g' },
  { argv: (k) => ['DEL', k], event: 'del', flag: 'g' },
  { argv: (k) => ['LPUSH', k, '1'], event: 'lpush', flag: 'l' },
  { argv: (k) => ['DEL', k], event: 'del', flag: 'g' },
  { argv: (k) => ['HSET', k, 'f', '1'], event: 'hset', flag: 'h' },
  { argv: (k) => ['DEL', k], event: 'del', flag: 'g' },
  { argv: (k) => ['SADD', k, '1'], event: 'sadd', flag: 's' },
  { argv: (k) => ['DEL', k], event: 'del', flag: 'g' },
  { argv: (k) => ['ZADD', k, '1', 'a'], event: 'zadd', flag: 'z' },
  { argv: (k) => ['DEL', k], event: 'del', flag: 'g' },
  { argv: (k) => ['XADD', k, '*', 'f', '1'], event: 'xadd', flag: 't' },
  { argv: (k) => ['DEL', k], event: 'del', flag: 'g' },
];

async function probeVerdict(node: PrecheckSide, key: string): Promise<CheckResult> {
  const seen = new Set<string>();
  let sub: KeyspaceSubscriber;
  try {
    sub = await KeyspaceSubscriber.open(node.ep, {
      dbs: [0],
      onEvent: (e) => {
        if (e.key.toString() === key) seen.add(e.event.toString());
      },
      onLost: () => undefined,
    });
  } catch (e) {
    return {
      status: 'failed',
      detail: `CONFIG is not available, and subscribing to keyspace events failed: ${(e as Error).message}`,
      fix: isDtsError(e) ? e.fix : 'allow the source user PSUBSCRIBE (ACL: +psubscribe &__keyspace@*)',
    };
  }
  try {
    // The admin connection is on db 0, where the subscription listens.
    const c = node.client;
    for (const step of PROBE_STEPS) await c.call(...(step.argv(key) as [string, ...string[]]));
    // The probe's expiry: a lookup after 1 ms makes the key expire and raises `expired` (x).
    await c.call('SET', key, '1', 'PX', '1');
    await sleep(5);
    await c.call('EXISTS', key);
    await c.call('DEL', key);
    const wanted = [...PROBE_STEPS.map((s) => s.event), 'expired'];
    const deadline = Date.now() + PROBE_WAIT_MS;
    while (wanted.some((w) => !seen.has(w)) && Date.now() < deadline) await sleep(20);
  } catch (e) {
    if (isCommandUnavailable(e)) {
      return {
        status: 'warning',
        detail: `CONFIG is not available and the probe could not write ${key} (${(e as Error).message}), so whether keyspace events flow is unknown`,
        fix: notifyConfigFix(undefined),
      };
    }
    throw e;
  } finally {
    // A step the user may not run leaves the probe key behind otherwise (seen with a least-privilege user).
    await node.client.call('DEL', key).catch(() => undefined);
    sub.close();
  }
  const flags = [...PROBE_STEPS, { event: 'expired', flag: 'x' }];
  const missingFlags = [...new Set(flags.filter((f) => !seen.has(f.event)).map((f) => f.flag))];
  if (missingFlags.length === 0) {
    return {
      status: 'passed',
      detail: `CONFIG is not available; a probe key raised every keyspace event class the reader needs (${flags.map((f) => f.flag).join('')}, K); evicted (e) cannot be probed: the parameter group's notify-keyspace-events should be KEA`,
    };
  }
  return {
    status: 'failed',
    detail:
      seen.size === 0
        ? 'CONFIG is not available, and a probe key written on the source raised no keyspace event: notify-keyspace-events lacks K (or is empty)'
        : `CONFIG is not available; a probe key raised some keyspace events but not those of class ${listWords(missingFlags)}`,
    fix: notifyConfigFix(undefined),
  };
}

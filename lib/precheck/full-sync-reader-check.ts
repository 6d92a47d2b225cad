import { olderRdb } from '../redis/server-versions.ts';
import type { TaskSpec } from '../task/spec.ts';
import { psyncVerdict } from './psync-permission.ts';
import { addressOf, formatBytes } from './server-facts.ts';
import {
  type CheckResult,
  nodesOf,
  type PrecheckCheck,
  type PrecheckContext,
  type PrecheckSide,
  sideOf,
} from './types.ts';

/** How fast a source writes its RDB, deliberately low: a longer fork, more copy-on-write. */
const RDB_BYTES_PER_SECOND = 100 * 1024 * 1024;
/** Pages a written byte may copy: writes spread over the keyspace touch a 4 KiB page each. */
const COW_PAGES_FACTOR = 8;
/** Share of the machine's memory the source and its fork may use together. */
const MAX_MEMORY_SHARE = 0.9;
/** The snapshot carries every key: below this share of them selected, SCAN reads less. */
const MIN_SELECTED_SHARE = 0.5;

type Choice = { reader: 'scan' | 'rdb'; why: string };

/**
 * Which reader the full sync takes, and why. `rdb` makes every source master fork once for a snapshot
 * (as a new replica does): it needs one process holding the link (not a Lambda), PSYNC, and memory for
 * the fork's copy-on-write; `auto` picks it only when all hold, and `scan` otherwise. The verdict goes
 * to the state machine (the precheck result's `fullSyncReader`).
 */
export const fullSyncReaderCheck: PrecheckCheck = {
  id: 'full-sync-reader',
  title: 'Full sync reader',
  needs: ['source'],
  listedFor: (spec) => spec.fullSync.reader !== 'scan',
  notApplicable: (spec) =>
    spec.syncType === 'incremental' ? 'syncType incremental has no full sync' : undefined,
  async run(ctx): Promise<CheckResult> {
    const spec = ctx.spec;
    const explicit = spec.fullSync.reader === 'rdb';
    const refused = await refusal(ctx);
    if (refused) {
      if (explicit && refused.hard) {
        return { status: 'failed', detail: `--full-sync-reader rdb: ${refused.why}`, fix: refused.fix };
      }
      if (explicit) {
        ctx.fullSyncReader = 'rdb';
        return { status: 'warning', detail: `rdb, as asked, although ${refused.why}`, fix: refused.fix };
      }
      ctx.fullSyncReader = 'scan';
      return { status: 'passed', detail: `scan (auto): ${refused.why}` };
    }
    const chosen: Choice = { reader: 'rdb', why: await headroomText(nodesOf(sideOf(ctx, 'source'))) };
    ctx.fullSyncReader = chosen.reader;
    return { status: 'passed', detail: `rdb (${explicit ? 'as asked' : 'auto'}): ${chosen.why}` };
  },
};

interface Refusal {
  why: string;
  fix: string;
  /** Cannot work at all (an explicit rdb fails); otherwise only unwise (it warns). */
  hard: boolean;
}

async function refusal(ctx: PrecheckContext): Promise<Refusal | undefined> {
  const spec = ctx.spec;
  const scan = 'use --full-sync-reader scan';
  if (spec.incremental.reader === 'notifications' && spec.syncType !== 'full') {
    return {
      why: 'incremental.reader notifications does not read the replication stream',
      fix: scan,
      hard: true,
    };
  }
  if (spec.incremental.mode === 'lambda' && spec.syncType !== 'full') {
    return {
      why: 'incremental.mode lambda: a Lambda window cannot hold the replication link for the whole snapshot',
      fix: `${scan}, or incremental.mode fargate`,
      hard: true,
    };
  }
  const source = sideOf(ctx, 'source');
  const target = ctx.target;
  if (target && olderRdb(source.info.versionNum, target.info.versionNum)) {
    return {
      why:
        "the destination reads an older RDB version than the source writes, so it refuses the snapshot's " +
        'payloads, and the rdb reader passes them on without decoding them (the scan reader writes such ' +
        'keys with type commands, see Versions and DUMP compatibility)',
      fix: `${scan}, or a destination of the source's version or newer`,
      hard: true,
    };
  }
  const nodes = nodesOf(source);
  for (const node of nodes) {
    const psync = await psyncVerdict(node);
    if (psync.status === 'failed') {
      return {
        why: `PSYNC is not available on ${addressOf(node.ep)} (${psync.detail})`,
        fix: psync.fix ?? scan,
        hard: true,
      };
    }
  }
  if (spec.existingKeys === 'overwrite') {
    return {
      why:
        'with --existing-keys overwrite an interrupted RDB load cannot be redone exactly (the destination dbs ' +
        'hold keys of their own, so they cannot be emptied first)',
      fix: scan,
      hard: false,
    };
  }
  const throttle = spec.throttle;
  if (throttle?.maxKeysPerSecond !== undefined || throttle?.maxBytesPerSecond !== undefined) {
    return {
      why: 'the task is throttled (--max-keys-per-second / --max-bytes-per-second), and the snapshot is written as fast as it arrives',
      fix: scan,
      hard: false,
    };
  }
  const share = selectedShare(spec, ctx, nodes);
  if (share !== undefined && share < MIN_SELECTED_SHARE) {
    return {
      why: `the task selects ${Math.round(share * 100)}% of the source's keys, and the snapshot carries all of them`,
      fix: scan,
      hard: false,
    };
  }
  for (const node of nodes) {
    const h = headroom(node);
    if (!h.ok) return { why: h.text, fix: `${scan}, or give the source machine more memory`, hard: false };
  }
  return undefined;
}

/** Selected keys over all keys, by INFO keyspace; undefined when prefixes select (their share is unknown). */
function selectedShare(spec: TaskSpec, ctx: PrecheckContext, nodes: PrecheckSide[]): number | undefined {
  if (spec.keyFilter?.include && spec.keyFilter.include.length > 0) return 0;
  let all = 0;
  let selected = 0;
  const dbs = new Set(ctx.routes.map((r) => r.sourceDb));
  for (const node of nodes) {
    for (const [db, { keys }] of Object.entries(node.info.keyspace)) {
      all += keys;
      if (dbs.has(Number(db))) selected += keys;
    }
  }
  return all === 0 ? undefined : selected / all;
}

interface Headroom {
  ok: boolean;
  text: string;
}

/**
 * The fork's copy-on-write, estimated from the write rate over the time the source takes to write its
 * RDB (bounded by its whole dataset), against what its machine has left (total_system_memory minus
 * used_memory_rss). Unknown system memory (some managed services hide it) counts as not enough.
 */
function headroom(node: PrecheckSide): Headroom {
  const f = node.fields;
  const num = (k: string) => Number(f[k] ?? 0) || 0;
  const used = num('used_memory');
  const rss = num('used_memory_rss') || used;
  const system = num('total_system_memory');
  const inputPerSecond = num('instantaneous_input_kbps') * 1024;
  const seconds = 1 + used / RDB_BYTES_PER_SECOND;
  const cow = Math.min(used, inputPerSecond * seconds * COW_PAGES_FACTOR);
  const where = addressOf(node.ep);
  if (system === 0) {
    return {
      ok: false,
      text: `${where} does not say how much memory its machine has, so the fork's headroom is unknown`,
    };
  }
  const free = system * MAX_MEMORY_SHARE - rss;
  const text =
    `${where} uses ${formatBytes(rss)} of ${formatBytes(system)}; the fork's copy-on-write is estimated at ` +
    `${formatBytes(cow)} (writes of ${formatBytes(inputPerSecond)}/s over ~${seconds.toFixed(0)} s of RDB)`;
  return {
    ok: cow <= free,
    text: cow <= free ? text : `${text}, more than the ${formatBytes(Math.max(0, free))} it has left`,
  };
}

async function headroomText(nodes: PrecheckSide[]): Promise<string> {
  return `PSYNC permitted; ${nodes.map((n) => headroom(n).text).join('; ')}`;
}

import { readFileSync } from 'node:fs';
import { DtsError } from '../errors.ts';
import { durationMs } from '../util/duration.ts';
import { parseByteSize } from '../util/memory-budget.ts';
import {
  ENDPOINT_OPTIONS,
  numberish,
  type parseFlags,
  REPLICATION_OPTIONS,
  SELECTION_OPTIONS,
} from './task-options.ts';
import { UsageError } from './usage-error.ts';

/**
 * The flags that describe a task, shared by `sync`, `precheck` and `verify`, and their mapping onto the
 * task spec. Its own module (not sync-command's) so the commands and the help text that lists them do
 * not import one another.
 */
export const SPEC_OPTIONS = {
  ...ENDPOINT_OPTIONS,
  ...REPLICATION_OPTIONS,
  ...SELECTION_OPTIONS,
  name: { type: 'string' },
  'task-id': { type: 'string' },
  'sync-type': { type: 'string' },
  'existing-keys': { type: 'string' },
  'max-keys-per-second': { type: 'string' },
  'max-bytes-per-second': { type: 'string' },
  'chunk-keys': { type: 'string' },
  'full-sync-reader': { type: 'string' },
  'cross-version': { type: 'string' },
  'memory-budget': { type: 'string' },
  verify: { type: 'string' },
  until: { type: 'string' },
  'verify-every': { type: 'string' },
  'verify-sample-rate': { type: 'string' },
  'no-heartbeat': { type: 'boolean' },
  'incremental-mode': { type: 'string' },
  'incremental-reader': { type: 'string' },
  'on-backlog-lost': { type: 'string' },
  'set-notify-keyspace-events': { type: 'boolean' },
  'events-file': { type: 'string' },
  'caught-up-lag': { type: 'string' },
  'caught-up-for': { type: 'string' },
  yes: { type: 'boolean', short: 'y' },
} as const;

type SpecFlags = ReturnType<typeof parseFlags<typeof SPEC_OPTIONS>>['values'];

/** Flags become the same object a console user would paste; the spec schema judges both alike. */
export function specInput(v: Partial<SpecFlags>): Record<string, unknown> {
  const base = v.spec ? readSpecFile(v.spec) : {};
  const input: Record<string, unknown> = { ...base };
  const endpoint = (role: 'source' | 'target') => {
    const current = (input[role] ?? {}) as Record<string, unknown>;
    const next: Record<string, unknown> = { ...current };
    if (v[role] !== undefined) {
      delete next.host;
      delete next.port;
      next.url = v[role];
    }
    set(next, 'passwordEnv', v[`${role}-password-env`]);
    set(next, 'tlsCaFile', v[`${role}-tls-ca`]);
    set(next, 'tlsInsecure', v[`${role}-tls-insecure`]);
    if (role === 'source') {
      set(next, 'psyncCommand', v['source-psync-command']);
      set(next, 'replconfCommand', v['source-replconf-command']);
    }
    if (Object.keys(next).length > 0) input[role] = next;
  };
  endpoint('source');
  endpoint('target');
  set(input, 'name', v.name);
  set(input, 'taskId', v['task-id']);
  set(input, 'syncType', v['sync-type']);
  set(input, 'existingKeys', v['existing-keys']);
  if (v.dbs !== undefined) input.dbs = v.dbs.split(',').map((s) => numberish(s.trim()));
  if (v['db-map'] !== undefined) input.dbMap = parseDbMap(v['db-map']);
  if (v['include-prefix'] || v['exclude-prefix']) {
    const kf = { ...((input.keyFilter ?? {}) as Record<string, unknown>) };
    set(kf, 'include', v['include-prefix']);
    set(kf, 'exclude', v['exclude-prefix']);
    input.keyFilter = kf;
  }
  if (v['max-keys-per-second'] !== undefined || v['max-bytes-per-second'] !== undefined) {
    const t = { ...((input.throttle ?? {}) as Record<string, unknown>) };
    if (v['max-keys-per-second'] !== undefined) t.maxKeysPerSecond = numberish(v['max-keys-per-second']);
    if (v['max-bytes-per-second'] !== undefined) t.maxBytesPerSecond = parseBytes(v['max-bytes-per-second']);
    input.throttle = t;
  }
  if (
    v['chunk-keys'] !== undefined ||
    v['full-sync-reader'] !== undefined ||
    v['cross-version'] !== undefined
  ) {
    const fs = { ...((input.fullSync ?? {}) as Record<string, unknown>) };
    if (v['chunk-keys'] !== undefined) fs.chunkKeys = numberish(v['chunk-keys']);
    set(fs, 'reader', v['full-sync-reader']);
    set(fs, 'crossVersion', v['cross-version']);
    input.fullSync = fs;
  }
  if (v['memory-budget'] !== undefined) {
    input.limits = {
      ...((input.limits ?? {}) as Record<string, unknown>),
      memoryBudget: numberish(v['memory-budget']),
    };
  }
  if (v.verify !== undefined)
    input.verify = { ...((input.verify ?? {}) as Record<string, unknown>), mode: v.verify };
  if (v['verify-every'] !== undefined || v['verify-sample-rate'] !== undefined) {
    const verify = { ...((input.verify ?? {}) as Record<string, unknown>) };
    const during = { ...((verify.duringIncremental ?? {}) as Record<string, unknown>) };
    if (v['verify-every'] !== undefined) during.intervalMs = numberish(v['verify-every']);
    if (v['verify-sample-rate'] !== undefined) during.sampleRate = numberish(v['verify-sample-rate']);
    verify.duringIncremental = during;
    input.verify = verify;
  }
  if (
    v.until !== undefined ||
    v['no-heartbeat'] ||
    v['incremental-mode'] !== undefined ||
    v['incremental-reader'] !== undefined ||
    v['on-backlog-lost'] !== undefined ||
    v['set-notify-keyspace-events']
  ) {
    const inc = { ...((input.incremental ?? {}) as Record<string, unknown>) };
    set(inc, 'until', v.until);
    set(inc, 'mode', v['incremental-mode']);
    set(inc, 'reader', v['incremental-reader']);
    set(inc, 'onBacklogLost', v['on-backlog-lost']);
    if (v['set-notify-keyspace-events']) inc.setNotifyKeyspaceEvents = true;
    if (v['no-heartbeat'])
      inc.heartbeat = { ...((inc.heartbeat ?? {}) as Record<string, unknown>), enabled: false };
    input.incremental = inc;
  }
  if (
    v['events-file'] !== undefined ||
    v['caught-up-lag'] !== undefined ||
    v['caught-up-for'] !== undefined
  ) {
    const events = { ...((input.events ?? {}) as Record<string, unknown>) };
    set(events, 'file', v['events-file']);
    if (v['caught-up-lag'] !== undefined || v['caught-up-for'] !== undefined) {
      const caughtUp = { ...((events.caughtUp ?? {}) as Record<string, unknown>) };
      if (v['caught-up-lag'] !== undefined) caughtUp.lagMs = durationMs(v['caught-up-lag']);
      if (v['caught-up-for'] !== undefined) caughtUp.forMs = durationMs(v['caught-up-for']);
      events.caughtUp = caughtUp;
    }
    input.events = events;
  }
  if (v.yes) input.acknowledgeWarnings = true;
  return input;
}

function set(o: Record<string, unknown>, key: string, value: unknown): void {
  if (value !== undefined) o[key] = value;
}

function parseDbMap(text: string): Record<string, unknown> {
  const map: Record<string, unknown> = {};
  for (const pair of text.split(',')) {
    const [from, to, extra] = pair.split(':').map((s) => s.trim());
    if (from === undefined || to === undefined || extra !== undefined || from === '' || to === '') {
      throw new UsageError(`--db-map '${text}': expected SRC:DST pairs like 0:2,1:3`, 'sync');
    }
    map[from] = numberish(to);
  }
  return map;
}

/** `10MB`, `512k`, `1GiB` or plain bytes; anything else is left for the spec to name. */
function parseBytes(text: string): number | string {
  return parseByteSize(text) ?? text;
}

function readSpecFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DtsError(
      'BAD_TASK_SPEC',
      `cannot read --spec ${path}: ${(e as Error).message}`,
      'give a readable JSON file',
    );
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
    throw new Error('the top level is not an object');
  } catch (e) {
    throw new DtsError(
      'BAD_TASK_SPEC',
      `--spec ${path} is not a JSON object: ${(e as Error).message}`,
      'see schema/task-spec.schema.json for the format',
    );
  }
}

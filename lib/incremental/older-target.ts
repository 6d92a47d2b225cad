import { DtsError } from '../errors.ts';
import { hasStreamCounters, versionNumber } from '../redis/server-versions.ts';

/**
 * Replaying a newer source's stream on an older destination. What the source propagates is what its
 * release has: a 7.x source writes XGROUP … ENTRIESREAD after each XREADGROUP and SET … PXAT for every
 * SET … EX, which a 6.x destination refuses; a RESTORE carries a payload it may not read. Each command
 * is either replayed as is (most), rewritten into what the destination has with the same effect, or
 * its keys are copied again at a stamp (exact whatever the command was); a command without keys that
 * the destination lacks stops the task with a named error (FUNCTION on a destination before 7.0).
 */
export type Adapted = { argvs: Buffer[][] } | 'recopy' | undefined;

/**
 * Write commands the source may propagate as they are, with the first release that has them (Redis'
 * own history: commands.json "since"). Readonly ones never reach the stream; those propagated as
 * others (GETDEL as DEL, GETEX as PEXPIREAT, BLMOVE as LMOVE, LMPOP as LPOP, XAUTOCLAIM as XCLAIM,
 * HEXPIRE as HPEXPIREAT) are listed by what reaches the stream.
 */
const SINCE: Readonly<Record<string, string>> = {
  lmove: '6.2.0',
  copy: '6.2.0',
  zrangestore: '6.2.0',
  getdel: '6.2.0',
  getex: '6.2.0',
  lmpop: '7.0.0',
  zmpop: '7.0.0',
  function: '7.0.0',
  hpexpireat: '7.4.0',
  hpersist: '7.4.0',
  hexpire: '7.4.0',
  hpexpire: '7.4.0',
  hexpireat: '7.4.0',
  hsetex: '8.0.0',
  hgetex: '8.0.0',
  hgetdel: '8.0.0',
};
const SUBCOMMAND_SINCE: Readonly<Record<string, string>> = {
  'xgroup|createconsumer': '6.2.0',
};

const V6_2 = 60200;
const ENTRIESREAD = 'entriesread';
const ENTRIESADDED = 'entriesadded';
const MAXDELETEDID = 'maxdeletedid';
const PEXPIREAT = Buffer.from('PEXPIREAT');
const EXPIREAT = Buffer.from('EXPIREAT');

export class OlderTarget {
  private readonly targetVersion: number;
  /** The destination refuses the source's DUMP payloads (older RDB version). */
  private readonly logical: boolean;
  private readonly targetLabel: string;

  constructor(o: { targetVersion: number; logical: boolean; targetLabel?: string }) {
    this.targetVersion = o.targetVersion;
    this.logical = o.logical;
    this.targetLabel = o.targetLabel ?? `a destination of redis_version ${formatVersion(o.targetVersion)}`;
  }

  /** What to do with a command that has `keys` (none: a keyless one). */
  adapt(argv: readonly Buffer[], keys: number): Adapted {
    const name = lower(argv[0]!);
    if (name === 'restore' || name === 'restore-asking') return this.logical ? 'recopy' : undefined;
    const sub = argv.length > 1 ? `${name}|${lower(argv[1]!)}` : '';
    const since = SUBCOMMAND_SINCE[sub] ?? SINCE[name];
    if (since !== undefined && versionNumber(since) > this.targetVersion) {
      if (keys > 0) return 'recopy';
      throw commandTooNew(
        sub && SUBCOMMAND_SINCE[sub] ? `${name} ${lower(argv[1]!)}` : name,
        since,
        this.targetLabel,
      );
    }
    if (!hasStreamCounters(this.targetVersion)) {
      // XGROUP CREATE|SETID key group id … ENTRIESREAD n; XSETID key id … ENTRIESADDED n MAXDELETEDID id.
      if (sub === 'xgroup|create' || sub === 'xgroup|setid') return dropOptions(argv, 5, [ENTRIESREAD]);
      if (name === 'xsetid') return dropOptions(argv, 3, [ENTRIESADDED, MAXDELETEDID]);
    }
    if (this.targetVersion < V6_2) {
      if (name === 'set') return splitSetExpiry(argv);
      // LPOP/RPOP key count (what LMPOP propagates as) needs 6.2.
      if ((name === 'lpop' || name === 'rpop') && argv.length > 2) return 'recopy';
    }
    return undefined;
  }
}

/** argv without each of `options` and its one value, searched from `from`; undefined when none is there. */
function dropOptions(argv: readonly Buffer[], from: number, options: readonly string[]): Adapted {
  const kept: Buffer[] = [...argv.slice(0, from)];
  for (let i = from; i < argv.length; i++) {
    if (options.includes(lower(argv[i]!)) && i + 1 < argv.length) i++;
    else kept.push(argv[i]!);
  }
  return kept.length === argv.length ? undefined : { argvs: [kept] };
}

/**
 * `SET k v … PXAT t` (EXAT) before 6.2: the SET without it, then PEXPIREAT (EXPIREAT) in the same
 * batch, which is one transaction on the destination, so nothing sees the key without its expiry.
 * A 7.x source propagates every SET with an expiry this way; NX/XX are kept (a SET that did not
 * write is not propagated), GET is dropped (the reply is nobody's).
 */
function splitSetExpiry(argv: readonly Buffer[]): Adapted {
  let expiry: [Buffer, Buffer] | undefined;
  const kept: Buffer[] = [argv[0]!, argv[1]!, argv[2]!];
  for (let i = 3; i < argv.length; i++) {
    const opt = lower(argv[i]!);
    if ((opt === 'pxat' || opt === 'exat') && i + 1 < argv.length) {
      expiry = [opt === 'pxat' ? PEXPIREAT : EXPIREAT, argv[++i]!];
    } else if (opt !== 'get') kept.push(argv[i]!);
  }
  if (!expiry) return kept.length === argv.length ? undefined : { argvs: [kept] };
  return { argvs: [kept, [expiry[0], argv[1]!, expiry[1]]] };
}

function commandTooNew(name: string, since: string, target: string): DtsError {
  return new DtsError(
    'COMMAND_TOO_NEW_FOR_TARGET',
    `the source's replication stream carries ${name.toUpperCase()}, which ${target} does not have ` +
      `(since Redis ${since}), and it names no key whose copy could stand for it`,
    `use a destination of Redis ${since} or newer, or stop using ${name.toUpperCase()} on the source during the task`,
  );
}

function lower(b: Buffer): string {
  return b.toString('latin1').toLowerCase();
}

function formatVersion(num: number): string {
  return `${Math.floor(num / 10000)}.${Math.floor(num / 100) % 100}.${num % 100}`;
}

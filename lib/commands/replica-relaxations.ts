/**
 * What a master may propagate that an ordinary client may not send, and how redis-dts applies it.
 *
 * A replica obeys its master: Redis skips some checks for the master's link (and for the AOF loader),
 * `mustObeyClient()` in 7.0+ and `c->flags & CLIENT_MASTER` before. redis-dts writes to a primary as an
 * ordinary client, so each case below is either rewritten into a form a client may send with the same
 * effect, re-copied from the source at a stamp (the command cannot be expressed), or stopped on with its
 * cause and fix (not even a re-copy can reproduce it). REPLICA_RELAXATIONS is the record of every case
 * found in the sources of Redis 6.0.20, 6.2.16, 7.0.15, 7.2.6, 7.4.1 and Valkey 7.2, 8.0.1; clientForm()
 * is what the filter calls before a command is applied.
 */
import { asciiLower } from './catalogue.ts';

export interface ReplicaRelaxation {
  /** Lower-case command names, or a description when the case is not one command's. */
  commands: readonly string[];
  /** What the master propagates, or the replica accepts, that a client may not send. */
  propagated: string;
  /** Where Redis relaxes the check: file:function, and the versions. */
  reference: string;
  /** 'rewrite': sent in a client's form; 'recopy': the keys copied at a stamp; 'precheck' / 'stop' / 'none'. */
  handling: 'rewrite' | 'recopy' | 'precheck' | 'stop' | 'none';
  what: string;
  /** The test that proves it (file › name), or why none is needed. */
  test: string;
}

export const REPLICA_RELAXATIONS: readonly ReplicaRelaxation[] = [
  // Version fact (for the shared server-versions module of #18): XADD/XTRIM LIMIT exists from 6.2; Redis 6.0
  // propagates `MAXLEN = n` without it, which needs no rewrite.
  {
    commands: ['xadd', 'xtrim'],
    propagated:
      'an approximate trim (`MAXLEN ~ n LIMIT m`) rewritten to an exact one at the effective threshold ' +
      '(`MAXLEN = n2`, or `MINID = id`) with its LIMIT kept; a client gets "LIMIT cannot be used without the special ~ option"',
    reference:
      't_stream.c:streamParseAddOrTrimArgsOrReply (6.2: `c == server.master`, 7.0+/Valkey: mustObeyClient sets limit 0); ' +
      'the rewrite in xaddCommand/xtrimCommand via streamRewriteApproxSpecifier + streamRewriteTrimArgument; 6.0 has no LIMIT',
    handling: 'rewrite',
    what: 'LIMIT <count> dropped when the trim is exact: an exact trim to the effective threshold removes the same entries',
    test: 'test/integration/replica-relaxations.test.ts › XADD/XTRIM with an approximate trim and LIMIT',
  },
  {
    commands: ['*'],
    propagated: 'an argument longer than the destination’s proto-max-bulk-len (the source’s may be larger)',
    reference:
      'networking.c:processMultibulkBuffer, `!(c->flags & CLIENT_MASTER) && ll > server.proto_max_bulk_len` (6.0 … 7.4, Valkey 8)',
    handling: 'recopy',
    what:
      'the written keys re-copied at a stamp (a payload above the limit takes the big-key path, in parts; a ' +
      'string value above it cannot be written by any command, which stops the task naming the key); a keyless ' +
      'command stops with the cause',
    test: 'test/integration/replica-relaxations.test.ts › values beyond the destination’s proto-max-bulk-len',
  },
  // Version fact: SETBIT/BITFIELD offsets are exempt for the master from 7.0 only (6.2 applies the source's
  // proto-max-bulk-len to it too, 6.0 a fixed 512 MB); the re-copy rule is safe for every version.
  {
    commands: ['setrange', 'setbit', 'bitfield'],
    propagated: 'a string grown past the destination’s proto-max-bulk-len by an offset in the arguments',
    reference:
      't_string.c:checkStringLength (CLIENT_MASTER from 6.0, mustObeyClient 7.0+); bitops.c:getBitOffsetFromArgument ' +
      '(mustObeyClient 7.0+; 6.2 checks proto_max_bulk_len for every client, 6.0 a fixed 512 MB)',
    handling: 'recopy',
    what: 'the key re-copied at a stamp when offset (+ value length) reaches the destination’s proto-max-bulk-len',
    test: 'test/integration/replica-relaxations.test.ts › values beyond the destination’s proto-max-bulk-len',
  },
  {
    commands: ['append', 'setrange', 'setbit', 'bitfield', 'incrbyfloat'],
    propagated:
      'a write to a string already longer than the destination’s proto-max-bulk-len (its length is not in the command)',
    reference: 't_string.c:checkStringLength, bitops.c:getBitOffsetFromArgument (as above)',
    handling: 'precheck',
    what:
      'precheck item target-bulk-limit: a destination limit below the source’s is a warning naming this; if it ' +
      'happens the batch stops (APPLY_PARTIAL) with the server’s error and the fix to raise the limit',
    test: 'test/integration/replica-relaxations.test.ts › precheck warns of a destination proto-max-bulk-len below the source’s',
  },
  {
    commands: ['function|load'],
    propagated: 'a library whose load runs past the 500 ms load timeout (no timeout for the master)',
    reference:
      'functions.c:functionLoadCommand, `if (mustObeyClient(c)) timeout = 0` (7.0 … 7.4, Valkey 7.2/8)',
    handling: 'stop',
    what:
      'no client form exists and a library is not a key to re-copy: the destination refuses it and the task stops ' +
      'with its error (APPLY_REJECTED), before anything of the batch ran',
    test: 'none: a library that loads for 500 ms is not generated; the refusal path is marker-applier.test.ts’s',
  },
  {
    commands: ['(every write command)'],
    propagated: 'writes while out of memory (a replica ignores maxmemory), or while the disk fails',
    reference:
      'evict.c:performEvictions `masterhost && repl_slave_ignore_maxmemory`; server.c:processCommand (disk error ' +
      'and read-only replica checks skip obey_client) (6.0 … 7.4, Valkey 8)',
    handling: 'stop',
    what: 'OOM / MISCONF refusals stop the batch with nothing applied (APPLY_REJECTED names maxmemory); precheck target-memory',
    test: 'test/integration/marker-applier.test.ts (queue-time refusal: nothing applied, the marker unmoved)',
  },
  {
    commands: ['(keys of several slots)'],
    propagated:
      'a command or transaction over several slots to a cluster node (no redirection for the master)',
    reference:
      'server.c:processCommand, cluster redirection skipped for `mustObeyClient` (CLIENT_MASTER in 6.x)',
    handling: 'recopy',
    what: 'split per slot where that keeps the meaning, else the keys re-copied (incremental-sync pushApplied, slot-split.ts)',
    test: 'test/integration/cluster-sync.test.ts',
  },
  {
    commands: ['eval', 'evalsha', 'fcall'],
    propagated: 'a script run for the master ignores OOM, the read-only replica and cluster checks',
    reference:
      'script.c:scriptPrepareForRun/scriptVerifyWriteCommandAllow/scriptVerifyOOM (7.0+); scripting.c (6.x)',
    handling: 'none',
    what: 'scripts are never run on the destination: their declared keys are re-copied (command-filter scriptDecision)',
    test: 'test/integration/replication-property.test.ts (EVAL and FCALL with effects)',
  },
  {
    commands: ['(blocking commands)'],
    propagated: 'no client timeout for the master link',
    reference: 'timeout.c:clientsCronHandleTimeout, `!mustObeyClient(c)` (CLIENT_MASTER in 6.x)',
    handling: 'none',
    what: 'blocking commands are propagated in their non-blocking form (LPOP, LMOVE, ZPOPMIN…), which a client may send',
    test: 'test/integration/replication-property.test.ts (blocking commands served by a later push)',
  },
  {
    commands: ['(keys past their expiry)'],
    propagated:
      'a master’s command on a key that is logically expired on the replica still finds it (the master sends the DEL)',
    reference:
      'db.c:expireIfNeeded, `current_client->flags & CLIENT_MASTER` → KEY_VALID (7.2+; 6.x/7.0 through lookupKeyWrite); ' +
      't_hash.c hashTypeGetValue for field expiry (7.4); expire.c:checkAlreadyExpired keeps past expiries on a replica',
    handling: 'none',
    what:
      'the destination is a primary and expires by its own clock at the same absolute time; the source’s DEL follows. ' +
      'A command that extends, reads or renames the key in the lag before its expiry (PERSIST, EXPIRE, RENAME…) can ' +
      'differ: a README known limit, which the property test met at once under lag and now keeps clear of (short ' +
      'expiries only on keys that get blind writes)',
    test: 'none: depends on the lag and the two clocks',
  },
  {
    commands: ['xgroup|setid', 'xgroup|create'],
    propagated:
      'ENTRIESREAD below -1: a group whose entries_read was set near 2^63-1 overflows as XREADGROUP delivers, and the ' +
      'source propagates the wrapped value (found by the replication property test)',
    reference:
      't_stream.c:xgroupCommand refuses it for every client, the master included ("value for ENTRIESREAD must be ' +
      'positive or -1", 7.0.15 … 7.4.1, Valkey 8): a native replica fails on it too',
    handling: 'recopy',
    what:
      'the stream key re-copied at a stamp (RESTORE carries the group as the source holds it). Without NOACK the ' +
      'delivery goes out as XCLAIMs, which carry no entries-read: every replica keeps the old counter (upstream)',
    test: 'test/integration/replica-relaxations.test.ts › an overflowed ENTRIESREAD',
  },
  {
    commands: ['xreadgroup'],
    propagated:
      'nothing: a history read (id other than >) without NOACK that delivers no entry creates its consumer on the ' +
      'source only (found by the replication property test)',
    reference:
      't_stream.c:xreadCommand, streamPropagateConsumerCreation only `if (noack)` (7.0.15, 7.2.6, 7.4.1)',
    handling: 'none',
    what:
      'a native replica lacks the consumer as well; redis-dts cannot see what is not propagated, and its Verify ' +
      'reports the consumer as "on the source only"',
    test: 'none: an upstream propagation gap; the property test generates that form only with NOACK',
  },
  {
    commands: ['restore'],
    propagated: 'a payload whose deep sanitization is skipped for the master',
    reference: 'rdb.c:rdbLoadObject deep_integrity_validation, CLIENT_MASTER (6.2+)',
    handling: 'none',
    what: 'only the depth of the check differs for a valid payload; precheck dump-compat proves the destination accepts the source’s payloads',
    test: 'test/integration/precheck.test.ts (dump-compat)',
  },
];

export interface ClientFormLimits {
  /** The destination's proto-max-bulk-len; absent: not known, no argument is too long. */
  maxBulkLen?: number;
}

export type ClientForm =
  /** argv to send (the same array when nothing needed rewriting). */
  | { kind: 'send'; argv: Buffer[] }
  /** No client form: copy the command's written keys from the source instead. */
  | { kind: 'recopy'; why: string };

/** The form of a propagated command that the destination accepts from an ordinary client (see the table). */
export function clientForm(name: string, argv: Buffer[], limits: ClientFormLimits): ClientForm {
  const max = limits.maxBulkLen;
  if (max !== undefined) {
    const long = argv.findIndex((a) => a.length > max);
    if (long >= 0)
      return { kind: 'recopy', why: `argument ${long} is longer than the destination's proto-max-bulk-len` };
    const grows = growsPastLimit(name, argv, max);
    if (grows) return { kind: 'recopy', why: grows };
  }
  if ((name === 'xgroup|setid' || name === 'xgroup|create') && overflowedEntriesRead(argv)) {
    return {
      kind: 'recopy',
      why: "its ENTRIESREAD is below -1 (the source's counter overflowed), which no server accepts",
    };
  }
  if (name === 'xadd' || name === 'xtrim')
    return { kind: 'send', argv: withoutExactTrimLimit(argv, name === 'xadd') };
  return { kind: 'send', argv };
}

/**
 * XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] id field value … and XTRIM key
 * MAXLEN|MINID [=|~] threshold [LIMIT count], parsed as streamParseAddOrTrimArgsOrReply does: options in
 * any order until XADD's ID. An exact trim drops its LIMIT; any other form is returned as is.
 */
function withoutExactTrimLimit(argv: Buffer[], xadd: boolean): Buffer[] {
  let approx = false;
  let limitAt: number | undefined;
  let i = 2;
  for (; i < argv.length; i++) {
    const word = asciiLower(argv[i]!);
    const more = argv.length - 1 - i;
    if (xadd && word === '*') break;
    if ((word === 'maxlen' || word === 'minid') && more >= 1) {
      const next = argv[i + 1]!.toString('latin1');
      if (next === '~' || next === '=') {
        approx = next === '~';
        i++;
      }
      i++;
    } else if (word === 'limit' && more >= 1) {
      limitAt = i;
      i++;
    } else if (xadd && word === 'nomkstream') {
      // an option without a value
    } else {
      break;
    }
  }
  if (limitAt === undefined || approx) return argv;
  return [...argv.slice(0, limitAt), ...argv.slice(limitAt + 2)];
}

/** XGROUP CREATE/SETID … ENTRIESREAD n with n < -1: what the source propagates once a group's counter passed 2^63-1. */
function overflowedEntriesRead(argv: Buffer[]): boolean {
  for (let i = 4; i + 1 < argv.length; i++) {
    if (asciiLower(argv[i]!) !== 'entriesread') continue;
    const text = argv[i + 1]!.toString('latin1');
    return /^-\d+$/.test(text) && text !== '-1';
  }
  return false;
}

/** Why the command would make a string reach `max` bytes, by the offsets in its arguments; undefined if not. */
function growsPastLimit(name: string, argv: Buffer[], max: number): string | undefined {
  if (name === 'setrange' && argv.length === 4) {
    const offset = integer(argv[2]!);
    // An empty value does not grow the string (setrangeCommand returns before checkStringLength's effect).
    if (offset !== undefined && argv[3]!.length > 0 && offset + argv[3]!.length > max) {
      return "SETRANGE would grow the string past the destination's proto-max-bulk-len";
    }
  }
  if (name === 'setbit' && argv.length === 4) {
    const offset = integer(argv[2]!);
    if (offset !== undefined && Math.floor(offset / 8) >= max) {
      return "SETBIT's offset lies past the destination's proto-max-bulk-len";
    }
  }
  if (name === 'bitfield' && bitfieldOffsets(argv).some((bits) => Math.floor(bits / 8) >= max)) {
    return "a BITFIELD offset lies past the destination's proto-max-bulk-len";
  }
  return undefined;
}

/** Bit offsets of BITFIELD's GET/SET/INCRBY operations (`#n` counts in units of the type's width). */
function bitfieldOffsets(argv: Buffer[]): number[] {
  const out: number[] = [];
  for (let i = 2; i < argv.length; i++) {
    const word = asciiLower(argv[i]!);
    if (word === 'overflow') {
      i++;
      continue;
    }
    const width = word === 'get' || word === 'set' || word === 'incrby' ? argv[i + 1] : undefined;
    const at = argv[i + 2];
    if (!width || !at) continue;
    const bits = Number(width.toString('latin1').slice(1));
    const text = at.toString('latin1');
    const n = integer(Buffer.from(text.startsWith('#') ? text.slice(1) : text));
    if (n !== undefined && Number.isFinite(bits)) out.push(text.startsWith('#') ? n * bits : n);
    i += word === 'get' ? 2 : 3;
  }
  return out;
}

function integer(b: Buffer): number | undefined {
  const s = b.toString('latin1');
  return /^-?\d{1,18}$/.test(s) ? Number(s) : undefined;
}

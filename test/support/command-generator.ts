import { createHash } from 'node:crypto';
import { mulberry32 } from './writers.ts';

/**
 * Generates calls of every write command a server reports, from its own COMMAND DOCS argument specs
 * (types, tokens, optional / multiple / multiple_token flags, oneof, blocks, key positions), with the
 * edge forms a replication stream must survive: empty and binary values, negative and huge numbers,
 * every expiry option, blocking commands, MULTI/EXEC, scripts and functions with effects, SWAPDB / MOVE
 * / COPY across dbs, FLUSHDB ASYNC. Deterministic for a seed: the same seed gives the same calls.
 */

/** One argument spec of COMMAND DOCS. */
export interface ArgDoc {
  name: string;
  type: string;
  token?: string;
  flags: string[];
  arguments?: ArgDoc[];
}

export interface CommandDoc {
  /** Lower case, `container|sub` for subcommands. */
  name: string;
  group: string;
  arguments: ArgDoc[];
  flags: string[];
}

export interface GeneratedCall {
  db: number;
  argv: (string | Buffer)[];
  /** A blocking command: sent on its own connection, served (or timed out) later. */
  blocking: boolean;
  /** Calls of one MULTI … EXEC (argv is then MULTI's). */
  transaction?: GeneratedCall[];
  /** Command name for the statistics (`xgroup|create`, MULTI, EVAL…). */
  label: string;
}

export const PROPERTY_DBS = [0, 1, 2] as const;

/** Scripts with effects on their declared keys; some fail half-way on a wrong type, which keeps the first effect. */
export const SCRIPTS: readonly { body: string; keys: number }[] = [
  { body: "redis.call('INCR', KEYS[1]); return redis.call('LPUSH', KEYS[2], ARGV[1] or 'x')", keys: 2 },
  { body: "return redis.call('SET', KEYS[1], ARGV[1] or 'v', 'EX', 3600)", keys: 1 },
  {
    body: "local v = redis.call('HINCRBY', KEYS[1], 'f', 1); redis.call('EXPIRE', KEYS[1], 100); return v",
    keys: 1,
  },
  { body: "redis.call('DEL', KEYS[1]); return redis.call('RPOPLPUSH', KEYS[2], KEYS[1])", keys: 2 },
  { body: "return redis.call('SPOP', KEYS[1])", keys: 1 },
  { body: "return redis.call('GET', KEYS[1])", keys: 1 },
];

export const LIBRARIES: readonly string[] = [
  [
    '#!lua name=proplib',
    "redis.register_function('pincr', function(keys, args) return redis.call('INCRBY', keys[1], args[1] or 1) end)",
    "redis.register_function('ppush', function(keys, args) redis.call('RPUSH', keys[1], args[1] or 'x'); return redis.call('LTRIM', keys[1], 0, 20) end)",
    "redis.register_function{function_name='pread', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}",
  ].join('\n'),
  [
    '#!lua name=proplib2',
    "redis.register_function('pzadd', function(keys, args) return redis.call('ZINCRBY', keys[1], 1, args[1] or 'm') end)",
  ].join('\n'),
];
const FUNCTIONS = ['pincr', 'ppush', 'pread', 'pzadd'];

/** Commands not generated, and why (each is covered elsewhere, or acts beyond the two servers). */
export const NOT_GENERATED: Readonly<Record<string, string>> = {
  migrate: 'moves keys to a third server (never replayed: re-copied, see command-filter)',
  restore: 'needs a DUMP payload; RESTORE is the re-copy path itself, proven by every sync test',
  'restore-asking': 'cluster-internal RESTORE',
  'function|restore': 'needs a FUNCTION DUMP payload',
  multi: 'generated as MULTI … EXEC blocks',
  exec: 'generated as MULTI … EXEC blocks',
  discard: 'generated as MULTI … EXEC blocks',
};

/** Rare, because they wipe what the others built. */
const WEIGHTS: Readonly<Record<string, number>> = {
  flushall: 0.02,
  flushdb: 0.05,
  swapdb: 0.1,
  'function|flush': 0.05,
  'function|delete': 0.2,
  eval: 3,
  evalsha: 1,
  fcall: 2,
  publish: 0.2,
  'xgroup|create': 3,
  xreadgroup: 3,
  xadd: 3,
};

const GROUP_POOLS: Readonly<Record<string, string>> = {
  string: 'str',
  bitmap: 'str',
  list: 'list',
  set: 'set',
  'sorted-set': 'zset',
  hash: 'hash',
  stream: 'stream',
  hyperloglog: 'hll',
  geo: 'geo',
};
const POOLS = ['str', 'list', 'set', 'zset', 'hash', 'stream', 'hll', 'geo'];
const KEYS_PER_POOL = 6;
const BINARY = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x80, 0xc3]);
const VALUES: readonly (string | Buffer)[] = [
  '',
  'a',
  'b',
  'hello',
  '0',
  '1',
  '-1',
  '10',
  '3.5',
  '9223372036854775807',
  '-9223372036854775808',
  BINARY,
  'x'.repeat(100),
  'f0',
  'f1',
];
const INTEGERS = [
  '0',
  '1',
  '-1',
  '2',
  '3',
  '7',
  '10',
  '100',
  '-100',
  '9223372036854775807',
  '-9223372036854775808',
];
const DOUBLES = ['0', '1.5', '-2.5', 'inf', '-inf', '3e5', '0.1', '10'];

/** COMMAND DOCS (and COMMAND's flags) → the write commands to generate, subcommands flattened. */
export function parseCommandDocs(docsReply: unknown, commandReply: unknown): CommandDoc[] {
  const flags = new Map<string, string[]>();
  const readFlags = (entry: unknown[]) => {
    flags.set(String(entry[0]).toLowerCase(), (entry[2] as unknown[]).map(String));
    for (const sub of (entry[9] as unknown[][] | undefined) ?? []) readFlags(sub);
  };
  for (const entry of commandReply as unknown[][]) readFlags(entry);
  const out: CommandDoc[] = [];
  const visit = (name: string, docReply: unknown) => {
    const doc = pairs(docReply);
    if (doc.subcommands) {
      for (const [sub, d] of Object.entries(pairs(doc.subcommands))) visit(sub.toLowerCase(), d);
      return;
    }
    out.push({
      name,
      group: String(doc.group ?? ''),
      arguments: ((doc.arguments as unknown[] | undefined) ?? []).map(toArg),
      flags: flags.get(name) ?? [],
    });
  };
  for (const [name, doc] of Object.entries(pairs(docsReply))) visit(name.toLowerCase(), doc);
  // COMMAND DOCS comes in the server's dict order, which a random hash seed changes at every start.
  out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return out.filter(
    (c) =>
      (c.flags.includes('write') || ['eval', 'evalsha', 'fcall', 'publish'].includes(c.name)) &&
      !(c.name in NOT_GENERATED),
  );
}

/** A RESP2 map: a flat array [k, v, k, v…]. */
function pairs(v: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const a = Array.isArray(v) ? v : [];
  for (let i = 0; i + 1 < a.length; i += 2) out[String(a[i])] = a[i + 1];
  return out;
}

function toArg(v: unknown): ArgDoc {
  const r = pairs(v);
  return {
    name: String(r.name),
    type: String(r.type),
    ...(r.token !== undefined ? { token: String(r.token) } : {}),
    flags: ((r.flags as unknown[] | undefined) ?? []).map(String),
    ...(r.arguments ? { arguments: (r.arguments as unknown[]).map(toArg) } : {}),
  };
}

export function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

export class CommandGenerator {
  private readonly rnd: () => number;
  private readonly commands: CommandDoc[];
  private readonly cumulative: number[] = [];
  private total = 0;
  private command: CommandDoc = { name: '', group: '', arguments: [], flags: [] };

  constructor(commands: CommandDoc[], seed: number) {
    this.rnd = mulberry32(seed);
    this.commands = commands;
    for (const c of commands) {
      this.total += WEIGHTS[c.name] ?? 1;
      this.cumulative.push(this.total);
    }
  }

  next(): GeneratedCall {
    const db = this.pick(PROPERTY_DBS);
    if (this.rnd() < 0.03) {
      const inner: GeneratedCall[] = [];
      const n = 2 + Math.floor(this.rnd() * 3);
      while (inner.length < n) {
        const c = this.one(db);
        if (!c.blocking) inner.push(c);
      }
      return { db, argv: ['MULTI'], blocking: false, transaction: inner, label: 'MULTI' };
    }
    return this.one(db);
  }

  private one(db: number): GeneratedCall {
    if (this.rnd() < 0.03) return this.volatile(db);
    if (this.rnd() < 0.01) return this.lexWrite(db);
    const x = this.rnd() * this.total;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    this.command = this.commands[lo]!;
    const argv = this.special() ?? [...this.commandWords(), ...this.args(this.command.arguments)];
    if (this.command.name === 'zremrangebylex') argv[1] = this.lexKey();
    if (this.command.name === 'zrangestore' && argv.some((a) => String(a).toUpperCase() === 'BYLEX')) {
      argv[2] = this.lexKey();
    }
    if (this.command.name === 'xreadgroup' && !argv.some((a) => String(a).toUpperCase() === 'NOACK')) {
      const [, , group, consumer] = argv;
      const streams = argv.findIndex((a) => String(a) === 'STREAMS');
      const keys = argv.slice(streams + 1, streams + 1 + (argv.length - streams - 1) / 2);
      const create = keys.map((k) => ({
        db,
        argv: ['XGROUP', 'CREATECONSUMER', k, group!, consumer!],
        blocking: false,
        label: 'xgroup|createconsumer',
      }));
      const read = { db, argv, blocking: false, label: 'xreadgroup' };
      return { db, argv: ['MULTI'], blocking: false, transaction: [...create, read], label: 'MULTI' };
    }
    return { db, argv, blocking: this.command.flags.includes('blocking'), label: this.command.name };
  }

  /**
   * A key that expires during the run. The destination is a primary and expires keys by its own clock, so
   * a command that extends, reads or renames a key in the lag before its expiry can differ there (README:
   * known limits); these keys only get blind writes, which end the same whether the key expired first or not.
   */
  private volatile(db: number): GeneratedCall {
    const key = `vol:${Math.floor(this.rnd() * KEYS_PER_POOL)}`;
    const ms = this.pick([50, 300, 1500]);
    const argv = this.pick([
      ['SET', key, 'v', 'PX', String(ms)],
      ['PSETEX', key, String(ms), 'v'],
      ['SET', key, 'v', 'PXAT', String(Date.now() + ms)],
      ['SETEX', key, '1', 'v'],
      ['SET', key, 'v', 'EXAT', String(Math.floor(Date.now() / 1000) + 1)],
      ['DEL', key],
    ]);
    return { db, argv, blocking: false, label: 'volatile key' };
  }

  /**
   * Lex ranges over a sorted set whose scores differ are unspecified in Redis (their result follows the
   * skiplist's random levels) and propagated verbatim, so even a native replica can differ. Lex commands
   * read `lex:` keys, whose members all have score 0 and which only these writes touch.
   */
  private lexWrite(db: number): GeneratedCall {
    const key = this.lexKey();
    const member = this.pick(['a', 'b', 'c', 'f0', 'hello', '']);
    const argv = this.pick([
      ['ZADD', key, '0', member],
      ['ZREM', key, member],
      ['ZADD', key, '0', member, '0', 'z'],
    ]);
    return { db, argv, blocking: false, label: 'lex key' };
  }

  private lexKey(): string {
    return `lex:${Math.floor(this.rnd() * 3)}`;
  }

  private commandWords(): string[] {
    return this.command.name.split('|').map((w) => (this.rnd() < 0.2 ? w : w.toUpperCase()));
  }

  /** Commands whose arguments are code or names the docs cannot describe. */
  private special(): (string | Buffer)[] | undefined {
    const name = this.command.name;
    if (name === 'eval' || name === 'evalsha') {
      const s = this.pick(SCRIPTS);
      const keys = Array.from({ length: s.keys }, () => this.key());
      return [
        name === 'eval' ? 'EVAL' : 'EVALSHA',
        name === 'eval' ? s.body : sha1(s.body),
        String(s.keys),
        ...keys,
        this.value(),
      ];
    }
    if (name === 'fcall')
      return ['FCALL', this.pick(FUNCTIONS), '1', this.key(), this.pick(['1', '5', 'm', 'x'])];
    if (name === 'function|load') {
      const lib = this.pick(LIBRARIES);
      return this.rnd() < 0.8 ? ['FUNCTION', 'LOAD', 'REPLACE', lib] : ['FUNCTION', 'LOAD', lib];
    }
    if (name === 'function|delete')
      return ['FUNCTION', 'DELETE', this.pick(['proplib2', 'proplib2', 'proplib', 'nolib'])];
    if (name === 'xreadgroup') {
      // Balanced STREAMS keys and ids, mostly '>' (new entries), which is what moves a group.
      const keys = Array.from({ length: 1 + Math.floor(this.rnd() * 2) }, () => this.key());
      const opts = this.args(this.command.arguments.filter((a) => a.flags.includes('optional')));
      // A history read (an id other than '>') that creates its consumer without delivering anything is
      // not propagated unless NOACK (Redis 7.0-7.4 t_stream.c xreadCommand): a native replica lacks the
      // consumer too. Generated only where it is propagated.
      // Redis 7.2+ also makes the consumer of a read that delivers nothing without propagating it: one() runs a
      // read without NOACK after an explicit XGROUP CREATECONSUMER, in one transaction.
      const history = opts.some((o) => String(o).toUpperCase() === 'NOACK');
      const ids = keys.map(() => (history ? this.pick(['>', '0']) : '>'));
      return [
        'XREADGROUP',
        'GROUP',
        this.pick(['g0', 'g1']),
        this.pick(['c0', 'c1', 'c2']),
        ...opts,
        'STREAMS',
        ...keys,
        ...ids,
      ];
    }
    return undefined;
  }

  private args(docs: readonly ArgDoc[]): (string | Buffer)[] {
    const out: (string | Buffer)[] = [];
    let numkeysAt: number | undefined;
    for (const a of docs) {
      if (a.name === 'numkeys') {
        numkeysAt = out.length;
        out.push('0');
        continue;
      }
      const before = out.length;
      this.arg(a, out);
      if (a.type === 'key' && numkeysAt !== undefined) {
        out[numkeysAt] = String(out.length - before);
        numkeysAt = undefined;
      }
    }
    return out;
  }

  private arg(a: ArgDoc, out: (string | Buffer)[]): void {
    const optional = a.flags.includes('optional');
    if (optional && this.rnd() < 0.5) return;
    const reps = a.flags.includes('multiple') ? 1 + Math.floor(this.rnd() * 3) : 1;
    const eachToken = a.flags.includes('multiple_token');
    if (a.token && !eachToken) out.push(a.token);
    for (let i = 0; i < reps; i++) {
      if (a.token && eachToken) out.push(a.token);
      this.value1(a, out);
    }
  }

  private value1(a: ArgDoc, out: (string | Buffer)[]): void {
    switch (a.type) {
      case 'pure-token':
        return;
      case 'oneof': {
        const child = this.pick(a.arguments ?? []);
        if (child) this.arg({ ...child, flags: child.flags.filter((f) => f !== 'optional') }, out);
        return;
      }
      case 'block':
        for (const child of a.arguments ?? []) this.arg(child, out);
        return;
      case 'key':
        out.push(this.key());
        return;
      default:
        out.push(this.scalar(a));
    }
  }

  private key(): string | Buffer {
    const r = this.rnd();
    if (r < 0.02) return Buffer.concat([Buffer.from('bin:'), BINARY]);
    const pool =
      r < 0.06 || !GROUP_POOLS[this.command.group] ? this.pick(POOLS) : GROUP_POOLS[this.command.group]!;
    return `${pool}:${Math.floor(this.rnd() * KEYS_PER_POOL)}`;
  }

  private value(): string | Buffer {
    return this.pick(VALUES);
  }

  /** A value for a string / integer / double / unix-time / pattern argument, chosen by its name. */
  private scalar(a: ArgDoc): string | Buffer {
    const name = a.name;
    const blocking = this.command.flags.includes('blocking');
    const now = Date.now();
    if (name === 'timeout') return this.pick(['0.05', '0.1', '0.3']);
    if (name === 'milliseconds' && blocking) return this.pick(['50', '200']);
    // Expiries far ahead, or already past (the source then deletes the key and sends DEL): see volatile().
    if (name === 'unix-time-seconds') return String(Math.floor(now / 1000) + this.pick([-10, 3600, 86400]));
    if (name === 'unix-time-milliseconds') return String(now + this.pick([-10_000, 3_600_000, 90_000_000]));
    if (name === 'seconds') return this.pick(['100', '3600', '0', '-1']);
    if (name === 'milliseconds') return this.pick(['100000', '3600000', '0', '-5']);
    if (name === 'db' || name === 'destination-db' || name === 'index1' || name === 'index2') {
      return String(this.pick(PROPERTY_DBS));
    }
    if (name === 'offset') return this.pick(['0', '1', '7', '100', '1000', '-1']);
    if (name === 'operation') return this.pick(['AND', 'OR', 'XOR', 'NOT']);
    if (name === 'subcommand') return this.pick(['GETREG', 'TODENSE', 'ENCODING', 'DECODE']);
    if (name === 'encoding') return this.pick(['u8', 'i8', 'u1', 'i16', 'i64', 'u63', 'i5']);
    // Small counters: a group's entries-read set near 2^63-1 overflows, and delivering without NOACK does
    // not propagate the counter (an upstream gap; the overflow case has its own test in replica-relaxations).
    if (name === 'count' || name === 'numkeys' || name === 'entries_added' || name === 'entries_read') {
      return this.pick(['0', '1', '2', '3', '5', '-1']);
    }
    if (name === 'start' || name === 'stop' || name === 'end' || name === 'index' || name === 'rank') {
      return this.pick(['0', '1', '-1', '2', '-3', '10']);
    }
    if (name === 'longitude') return this.pick(['13.361389', '-122.27652', '0', '179.9']);
    if (name === 'latitude') return this.pick(['38.115556', '37.805186', '0', '-85']);
    if (
      name === 'id' ||
      name === 'last-id' ||
      name === 'max_deleted_entry_id' ||
      name === 'start' ||
      name === 'end'
    ) {
      // Small ids, ids ahead of '*' (the clock), the `<ms>-*` form, and the special ones.
      return this.pick([
        '0-1',
        '1-0',
        `${1 + Math.floor(this.rnd() * 3000)}-${Math.floor(this.rnd() * 3)}`,
        `${now + Math.floor(this.rnd() * 5000)}-${Math.floor(this.rnd() * 3)}`,
        name === 'id' ? `${now + Math.floor(this.rnd() * 5000)}-*` : `${now + 10_000}-0`,
        '$',
        '>',
        '0',
      ]);
    }
    if (name === 'threshold')
      return this.pick(['0', '5', '100', '1000-0', `${Math.floor(this.rnd() * 3000)}`]);
    if (name === 'group' || name === 'groupname') return this.pick(['g0', 'g1', 'g2']);
    if (name === 'consumer' || name === 'consumername') return this.pick(['c0', 'c1', 'c2']);
    if (name === 'min-idle-time') return this.pick(['0', '10', '100000']);
    if (name === 'min' || name === 'max') {
      return this.command.name.includes('lex')
        ? this.pick(['-', '+', '[a', '(b', '[f0'])
        : this.pick(['-inf', '+inf', '0', '(1', '5', '2.5']);
    }
    if (name === 'field') return this.pick(['f0', 'f1', 'f2', '', BINARY]);
    if (name === 'lib-name' || name === 'library-name') return this.pick(['proplib', 'proplib2']);
    if (a.type === 'pattern') return this.pick(['*', 'str:*', 'nosort', '#', '*->f0']);
    if (a.type === 'integer') return this.pick(INTEGERS);
    if (a.type === 'double') return this.pick(DOUBLES);
    if (a.type === 'unix-time') return String(Math.floor(now / 1000) + 3600);
    return this.value();
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rnd() * items.length)]!;
  }
}

import { describe, expect, it } from 'vitest';
import { asciiLower, buildCatalogue, lookupCommand, tableCatalogue } from '../../lib/commands/catalogue.ts';
import { parseCommandReply } from '../../lib/commands/catalogue-reply.ts';
import { tableCommands } from '../../lib/commands/catalogue-table.ts';
import type { CommandInfo } from '../../lib/commands/catalogue-types.ts';
import {
  type FilterContext,
  type FilterDecision,
  filterCommand,
  isSelect,
  selectedDb,
} from '../../lib/commands/command-filter.ts';
import { extractKeys } from '../../lib/commands/key-extraction.ts';
import { makeKeyFilter } from '../../lib/commands/key-filter.ts';

const argv = (...words: string[]) => words.map((w) => Buffer.from(w));
const strs = (bufs: Buffer[]) => bufs.map((b) => b.toString());
const table = tableCatalogue();

/** [argv, expected keys, expected written keys (default: all keys)] */
type Case = [string[], string[], string[]?];

// The commands DTS documents, plus what Redis 7 propagates, each with a realistic argv.
const CASES: Case[] = [
  [['APPEND', 'k', 'v'], ['k']],
  [['BITOP', 'AND', 'dest', 'k1', 'k2'], ['dest', 'k1', 'k2'], ['dest']],
  [
    ['BLPOP', 'l1', 'l2', '0'],
    ['l1', 'l2'],
  ],
  [
    ['BRPOP', 'l1', 'l2', '5'],
    ['l1', 'l2'],
  ],
  [
    ['BRPOPLPUSH', 'src', 'dst', '0'],
    ['src', 'dst'],
  ],
  [['DECR', 'n'], ['n']],
  [['DECRBY', 'n', '2'], ['n']],
  [
    ['DEL', 'a', 'b', 'c'],
    ['a', 'b', 'c'],
  ],
  [
    ['EVAL', 'return redis.call("set", KEYS[1], ARGV[1])', '2', 'k1', 'k2', 'v'],
    ['k1', 'k2'],
  ],
  [['EVAL', 'return 1', '0'], []],
  [['EVALSHA', 'e0e1f9fabfc9d4800c877a703b823ac0578ff831', '1', 'k', 'arg'], ['k']],
  [['EXEC'], []],
  [['EXPIRE', 'k', '10'], ['k']],
  [['EXPIREAT', 'k', '1900000000'], ['k']],
  [['GEOADD', 'geo', '13.361389', '38.115556', 'Palermo'], ['geo']],
  [['GETSET', 'k', 'v'], ['k']],
  [['HDEL', 'h', 'f1', 'f2'], ['h']],
  [['HINCRBY', 'h', 'f', '1'], ['h']],
  [['HINCRBYFLOAT', 'h', 'f', '1.5'], ['h']],
  [['HMSET', 'h', 'f1', 'v1', 'f2', 'v2'], ['h']],
  [['HSET', 'h', 'f', 'v'], ['h']],
  [['HSETNX', 'h', 'f', 'v'], ['h']],
  [['INCR', 'n'], ['n']],
  [['INCRBY', 'n', '5'], ['n']],
  [['INCRBYFLOAT', 'n', '0.5'], ['n']],
  [['LINSERT', 'l', 'BEFORE', 'pivot', 'v'], ['l']],
  [['LPOP', 'l'], ['l']],
  [['LPUSH', 'l', 'a', 'b'], ['l']],
  [['LPUSHX', 'l', 'a'], ['l']],
  [['LREM', 'l', '0', 'a'], ['l']],
  [['LSET', 'l', '0', 'a'], ['l']],
  [['LTRIM', 'l', '0', '-1'], ['l']],
  [['MOVE', 'k', '3'], ['k']],
  [
    ['MSET', 'a', '1', 'b', '2', 'c', '3'],
    ['a', 'b', 'c'],
  ],
  [
    ['MSETNX', 'a', '1', 'b', '2'],
    ['a', 'b'],
  ],
  [['MULTI'], []],
  [['PERSIST', 'k'], ['k']],
  [['PEXPIRE', 'k', '1000'], ['k']],
  [['PEXPIREAT', 'k', '1900000000000'], ['k']],
  [['PFADD', 'hll', 'a', 'b'], ['hll']],
  [['PFMERGE', 'dst', 's1', 's2'], ['dst', 's1', 's2'], ['dst']],
  // Redis 7.2 made PFMERGE's source keys optional (found by the property test on 7.2.6).
  [['PFMERGE', 'dst'], ['dst']],
  [['PSETEX', 'k', '100', 'v'], ['k']],
  [
    ['RENAME', 'a', 'b'],
    ['a', 'b'],
  ],
  [
    ['RENAMENX', 'a', 'b'],
    ['a', 'b'],
  ],
  [['RESTORE', 'k', '0', '\x00\x01payload', 'REPLACE', 'ABSTTL'], ['k']],
  [['RPOP', 'l', '2'], ['l']],
  [
    ['RPOPLPUSH', 'src', 'dst'],
    ['src', 'dst'],
  ],
  [['RPUSH', 'l', 'a'], ['l']],
  [['RPUSHX', 'l', 'a'], ['l']],
  [['SADD', 's', 'm1', 'm2'], ['s']],
  [['SDIFFSTORE', 'd', 's1', 's2'], ['d', 's1', 's2'], ['d']],
  [['SELECT', '2'], []],
  [['SET', 'k', 'v'], ['k']],
  [['SETBIT', 'k', '7', '1'], ['k']],
  [['SETEX', 'k', '10', 'v'], ['k']],
  [['SETNX', 'k', 'v'], ['k']],
  [['SETRANGE', 'k', '0', 'v'], ['k']],
  [['SINTERSTORE', 'd', 's1', 's2'], ['d', 's1', 's2'], ['d']],
  [
    ['SMOVE', 'src', 'dst', 'm'],
    ['src', 'dst'],
  ],
  [['SPOP', 's'], ['s']],
  [['SREM', 's', 'm'], ['s']],
  [['SUNIONSTORE', 'd', 's1', 's2'], ['d', 's1', 's2'], ['d']],
  [['ZADD', 'z', 'NX', '1', 'a', '2', 'b'], ['z']],
  [['ZINCRBY', 'z', '1', 'a'], ['z']],
  [['ZINTERSTORE', 'd', '2', 'z1', 'z2', 'WEIGHTS', '1', '2'], ['d', 'z1', 'z2'], ['d']],
  [['ZREM', 'z', 'a'], ['z']],
  [['ZREMRANGEBYLEX', 'z', '[a', '[c'], ['z']],
  [['ZUNIONSTORE', 'd', '3', 'z1', 'z2', 'z3', 'AGGREGATE', 'MAX'], ['d', 'z1', 'z2', 'z3'], ['d']],
  [['ZREMRANGEBYRANK', 'z', '0', '1'], ['z']],
  [['ZREMRANGEBYSCORE', 'z', '-inf', '(5'], ['z']],
  [
    ['UNLINK', 'a', 'b'],
    ['a', 'b'],
  ],
  [['XADD', 's', 'MAXLEN', '~', '100', '*', 'f', 'v'], ['s']],
  [
    ['XCLAIM', 's', 'g', 'c', '0', '1-0', 'TIME', '1700000000000', 'RETRYCOUNT', '1', 'FORCE', 'JUSTID'],
    ['s'],
  ],
  [['XDEL', 's', '1-0', '2-0'], ['s']],
  [['XAUTOCLAIM', 's', 'g', 'c', '0', '0-0', 'COUNT', '10'], ['s']],
  [['XGROUP', 'CREATECONSUMER', 's', 'g', 'c'], ['s']],
  [['XTRIM', 's', 'MAXLEN', '10'], ['s']],
  [['SET', 'k', 'v', 'PXAT', '1900000000000'], ['k']],
  [['GETDEL', 'k'], ['k']],
  [['GETEX', 'k', 'PERSIST'], ['k']],
  [
    ['LMOVE', 'src', 'dst', 'LEFT', 'RIGHT'],
    ['src', 'dst'],
  ],
  [
    ['BLMOVE', 'src', 'dst', 'LEFT', 'RIGHT', '0'],
    ['src', 'dst'],
  ],
  [
    ['LMPOP', '2', 'l1', 'l2', 'LEFT', 'COUNT', '3'],
    ['l1', 'l2'],
  ],
  [
    ['ZMPOP', '2', 'z1', 'z2', 'MIN'],
    ['z1', 'z2'],
  ],
  [['COPY', 'src', 'dst', 'DB', '2', 'REPLACE'], ['src', 'dst'], ['dst']],
  [['ZRANGESTORE', 'd', 'z', '0', '-1'], ['d', 'z'], ['d']],
  [['ZDIFFSTORE', 'd', '2', 'z1', 'z2'], ['d', 'z1', 'z2'], ['d']],
  [['XSETID', 's', '5-0', 'ENTRIESADDED', '5', 'MAXDELETEDID', '0-0'], ['s']],
  [['XGROUP', 'CREATE', 's', 'g', '$', 'MKSTREAM'], ['s']],
  [['XGROUP', 'SETID', 's', 'g', '0', 'ENTRIESREAD', '0'], ['s']],
  [['XGROUP', 'DESTROY', 's', 'g'], ['s']],
  [['XGROUP', 'DELCONSUMER', 's', 'g', 'c'], ['s']],
  [['XACK', 's', 'g', '1-0', '2-0'], ['s']],
  [['FUNCTION', 'LOAD', "#!lua name=lib\nredis.register_function('f', function() return 1 end)"], []],
  [['FUNCTION', 'DELETE', 'lib'], []],
  [['FUNCTION', 'FLUSH', 'ASYNC'], []],
  [['SCRIPT', 'LOAD', 'return 1'], []],
  [['PUBLISH', 'channel', 'message'], []],
  // Key specs beyond fixed positions: keyword searches, keynum, a fraction of the rest.
  [
    ['XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', '1', 'STREAMS', 's1', 's2', '>', '>'],
    ['s1', 's2'],
  ],
  [['XREAD', 'COUNT', '2', 'BLOCK', '0', 'STREAMS', 'a', 'b', 'c', '0', '0', '0'], ['a', 'b', 'c'], []],
  [['GEORADIUS', 'geo', '15', '37', '200', 'km', 'ASC', 'STORE', 'dst'], ['geo', 'dst'], ['dst']],
  [
    ['GEOSEARCHSTORE', 'dst', 'src', 'FROMLONLAT', '15', '37', 'BYRADIUS', '200', 'km'],
    ['dst', 'src'],
    ['dst'],
  ],
  [['SINTERCARD', '2', 's1', 's2', 'LIMIT', '1'], ['s1', 's2'], []],
  [['SORT', 'l', 'LIMIT', '0', '10', 'ALPHA', 'STORE', 'dst'], ['l', 'dst'], ['dst']],
  [
    ['MIGRATE', '127.0.0.1', '6380', '', '0', '5000', 'COPY', 'AUTH2', 'u', 'p', 'KEYS', 'a', 'b'],
    ['a', 'b'],
  ],
  [['MIGRATE', '127.0.0.1', '6380', 'k', '0', '5000'], ['k']],
  [['SPUBLISH', 'shard-channel', 'message'], []],
];

describe('extractKeys on the checked-in Redis 7.0 table', () => {
  it.each(CASES.map((c) => [c[0].join(' ').slice(0, 60), c] as const))(
    '%s',
    (_name, [words, keys, writes]) => {
      const ex = extractKeys(table, argv(...words));
      expect(ex.kind).toBe(keys.length > 0 ? 'keys' : 'none');
      expect(strs(ex.keys)).toEqual(keys);
      expect(strs(ex.writes)).toEqual(writes ?? keys);
      expect(ex.positions.map((p) => words[p])).toEqual(keys);
      expect(ex.complete).toBe(true);
    },
  );

  it('says keyspace for FLUSHDB, FLUSHALL and SWAPDB', () => {
    for (const words of [['FLUSHDB'], ['FLUSHALL', 'ASYNC'], ['SWAPDB', '0', '1']]) {
      expect(extractKeys(table, argv(...words))).toMatchObject({ kind: 'keyspace', keys: [] });
    }
  });

  it('matches command and subcommand names case-insensitively', () => {
    expect(strs(extractKeys(table, argv('sEt', 'k', 'v')).keys)).toEqual(['k']);
    expect(strs(extractKeys(table, argv('xgroup', 'CreateConsumer', 's', 'g', 'c')).keys)).toEqual(['s']);
    expect(strs(extractKeys(table, argv('xreadgroup', 'group', 'g', 'c', 'streams', 's', '>')).keys)).toEqual(
      ['s'],
    );
    expect(lookupCommand(table, argv('Function', 'load', 'x'))?.name).toBe('function|load');
  });

  it('keeps binary key names byte for byte', () => {
    const key = Buffer.from([0xff, 0x00, 0x80, 0x41]);
    const ex = extractKeys(table, [Buffer.from('SET'), key, Buffer.from('v')]);
    expect(ex.keys[0]?.equals(key)).toBe(true);
  });

  it('says unknown for commands and subcommands not in the catalogue, and for a bad key count', () => {
    expect(extractKeys(table, argv('NOSUCHCOMMAND', 'k'))).toMatchObject({ kind: 'unknown', keys: [] });
    expect(extractKeys(table, argv('XGROUP', 'NOSUCH', 's'))).toMatchObject({ kind: 'unknown' });
    expect(extractKeys(table, argv('XGROUP'))).toMatchObject({ kind: 'unknown' });
    expect(extractKeys(table, [])).toMatchObject({ kind: 'unknown' });
    const bad = extractKeys(table, argv('ZUNIONSTORE', 'd', 'two', 'z1', 'z2'));
    expect(bad.kind).toBe('unknown');
    expect(bad.reason).toMatch(/not a count/);
    expect(extractKeys(table, argv('LMPOP', '3', 'l1', 'LEFT')).kind).toBe('unknown');
  });

  it('marks SORT with BY/GET patterns incomplete, since they read keys named by the values', () => {
    const ex = extractKeys(
      table,
      argv('SORT', 'l', 'BY', 'weight_*', 'GET', '#', 'GET', 'obj_*->f', 'STORE', 'd'),
    );
    expect(strs(ex.keys)).toEqual(['l', 'd']);
    expect(strs(ex.writes)).toEqual(['d']);
    expect(ex.complete).toBe(false);
    expect(extractKeys(table, argv('SORT', 'l', 'BY', 'nosort', 'GET', '#')).complete).toBe(true);
    // The last STORE wins, as in sortCommand.
    expect(strs(extractKeys(table, argv('SORT', 'l', 'STORE', 'a', 'STORE', 'b')).writes)).toEqual(['b']);
  });

  it('treats XREADGROUP as writing its streams although its 7.0 key spec says RO', () => {
    const ex = extractKeys(table, argv('XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', 's', '>'));
    expect(strs(ex.writes)).toEqual(['s']);
  });
});

describe('the checked-in table', () => {
  it('holds every command of the list with key specs, and the container subcommands', () => {
    const names = new Set(tableCommands().map((c) => c.name));
    for (const [words] of CASES) {
      const spec = lookupCommand(table, argv(...words));
      expect(spec, words.join(' ')).toBeDefined();
      expect(spec?.keySpecs).toBeDefined();
    }
    for (const n of ['xgroup|create', 'xgroup|setid', 'function|load', 'function|restore', 'script|load']) {
      expect(names.has(n), n).toBe(true);
    }
    expect(table.source).toBe('table');
    expect([...table.commands.values()].every((c) => c.origin === 'table')).toBe(true);
  });

  it('attaches our traits', () => {
    const get = (n: string) => table.commands.get(n);
    expect(get('flushall')?.keyspace).toBe('flushall');
    expect(get('publish')?.noReplay).toBe(true);
    expect(get('spublish')?.noReplay).toBe(true);
    expect(get('select')?.select).toBe(true);
    expect(get('multi')?.transaction).toBe('multi');
    expect(get('exec')?.transaction).toBe('exec');
    expect(get('evalsha')?.script).toBe(true);
    expect(get('function|load')?.function).toBe(true);
    expect(get('move')?.dbChange?.writesIn).toBe('both');
    expect(get('set')?.write).toBe(true);
    expect(get('get')?.write).toBe(false);
  });
});

// A COMMAND reply as RESP2 delivers it: maps are flat [k, v, …] arrays.
const rangeSpec = (flags: string[], index: number, lastkey = 0) => [
  'flags',
  flags,
  'begin_search',
  ['type', 'index', 'spec', ['index', index]],
  'find_keys',
  ['type', 'range', 'spec', ['lastkey', lastkey, 'keystep', 1, 'limit', 0]],
];
const moduleReply = [
  ['mymod.set', -3, ['write', 'module'], 1, 1, 1, ['@module'], [], [rangeSpec(['RW', 'update'], 1)], []],
  ['mymod.info', 1, ['readonly', 'module'], 0, 0, 0, [], [], [], []],
  ['mymod.write', 1, ['write', 'module'], 0, 0, 0, [], [], [], []],
  [
    'mymod.odd',
    -2,
    ['write', 'module', 'movablekeys'],
    0,
    0,
    0,
    [],
    [],
    [
      [
        'flags',
        ['RW'],
        'begin_search',
        ['type', 'unknown', 'spec', []],
        'find_keys',
        ['type', 'unknown', 'spec', []],
      ],
    ],
    [],
  ],
  [
    'mymod.group',
    -2,
    [],
    0,
    0,
    0,
    [],
    [],
    [],
    [['mymod.group|add', -3, ['write', 'module'], 2, 2, 1, [], [], [rangeSpec(['OW'], 2)], []]],
  ],
];

describe('parseCommandReply and buildCatalogue', () => {
  it('reads RESP2 flat maps and RESP3 Map/object maps alike', () => {
    const resp3 = [
      [
        'mymod.set',
        -3,
        new Set(['write', 'module']),
        1,
        1,
        1,
        [],
        [],
        [
          new Map<string, unknown>([
            ['flags', ['RW', 'update']],
            ['begin_search', { type: 'index', spec: { index: 1 } }],
            [
              'find_keys',
              new Map<string, unknown>([
                ['type', 'range'],
                ['spec', { lastkey: 0, keystep: 1, limit: 0 }],
              ]),
            ],
          ]),
        ],
        [],
      ],
    ];
    const [a] = parseCommandReply(moduleReply);
    const [b] = parseCommandReply(resp3);
    expect(a?.keySpecs).toEqual(b?.keySpecs);
    expect(a?.keySpecs).toEqual([
      {
        flags: ['RW', 'update'],
        begin: { type: 'index', index: 1 },
        find: { type: 'range', lastKey: 0, keyStep: 1, limit: 0 },
      },
    ]);
    const group = parseCommandReply(moduleReply).find((c) => c.name === 'mymod.group');
    expect(group?.subcommands).toEqual(['mymod.group|add']);
  });

  it('rejects replies of another shape, so loadCatalogue can fall back', () => {
    expect(() => parseCommandReply('ERR')).toThrow();
    expect(() => parseCommandReply([['get', 'two']])).toThrow(/arity|6\+/);
  });

  it('gives pre-7 servers (no key specs) the table for known commands, first/last/step for others', () => {
    // Redis 6: 7 fields, no key specs; ZUNIONSTORE is movablekeys with first 0 there.
    const legacy = parseCommandReply([
      ['zunionstore', -4, ['write', 'denyoom', 'movablekeys'], 0, 0, 0, ['@write']],
      ['oldmod.put', -3, ['write', 'module'], 1, -1, 2, ['@module']],
      ['oldmod.multi', -2, ['write', 'module', 'movablekeys'], 0, 0, 0, []],
    ]);
    const cat = buildCatalogue(tableCommands(), legacy);
    expect(strs(extractKeys(cat, argv('ZUNIONSTORE', 'd', '2', 'a', 'b')).keys)).toEqual(['d', 'a', 'b']);
    expect(cat.commands.get('zunionstore')?.origin).toBe('table');
    expect(strs(extractKeys(cat, argv('oldmod.put', 'k1', 'v1', 'k2', 'v2')).keys)).toEqual(['k1', 'k2']);
    expect(extractKeys(cat, argv('oldmod.multi', 'x')).kind).toBe('unknown');
  });
});

const moduleCatalogue = buildCatalogue(tableCommands(), parseCommandReply(moduleReply));

function decide(words: string[], ctx: Partial<FilterContext> = {}, db = 0): FilterDecision {
  return filterCommand(
    { db, argv: argv(...words) },
    { catalogue: ctx.catalogue ?? table, keep: ctx.keep ?? makeKeyFilter(), ...ctx },
  );
}

/** Decisions with Buffers turned into strings, for readable expectations. */
function decideText(words: string[], ctx: Partial<FilterContext> = {}, db = 0): Record<string, unknown> {
  const d = decide(words, ctx, db) as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) {
    out[k] = Array.isArray(v) && v.every((x) => Buffer.isBuffer(x)) ? strs(v as Buffer[]) : v;
  }
  return out;
}

const onlyIn = makeKeyFilter({ include: ['in:'] });

describe('filterCommand', () => {
  it('applies a catalogued write in the mapped db, with its keys', () => {
    expect(decideText(['SET', 'k', 'v'], { dbMap: { 0: 5 } })).toEqual({
      action: 'apply',
      db: 5,
      argv: ['SET', 'k', 'v'],
      keys: ['k'],
      serverWide: false,
    });
  });

  it('skips commands on unselected dbs', () => {
    expect(decide(['SET', 'k', 'v'], { selectedDbs: new Set([1]) }, 0)).toEqual({
      action: 'skip',
      reason: 'db',
    });
    expect(decide(['SET', 'k', 'v'], { selectedDbs: new Set([1]) }, 1)).toMatchObject({
      action: 'apply',
      db: 1,
    });
  });

  it('filters by prefix: all excluded → skip, all included → apply, a mix → re-copy the included written keys', () => {
    expect(decide(['DEL', 'out:a', 'out:b'], { keep: onlyIn })).toEqual({ action: 'skip', reason: 'prefix' });
    expect(decide(['DEL', 'in:a', 'in:b'], { keep: onlyIn })).toMatchObject({ action: 'apply' });
    expect(decideText(['RENAME', 'in:a', 'out:b'], { keep: onlyIn })).toEqual({
      action: 'recopy',
      db: 0,
      targetDb: 0,
      keys: ['in:a'],
      reason: 'prefix',
    });
    expect(decideText(['SUNIONSTORE', 'in:d', 'out:s1', 'in:s2'], { keep: onlyIn })).toMatchObject({
      action: 'recopy',
      keys: ['in:d'],
    });
    // Only the excluded destination changes: nothing of ours does.
    expect(decide(['SUNIONSTORE', 'out:d', 'in:s1', 'in:s2'], { keep: onlyIn })).toEqual({
      action: 'skip',
      reason: 'prefix',
    });
    expect(decideText(['MSET', 'in:a', '1', 'out:b', '2', 'in:a', '3'], { keep: onlyIn })).toMatchObject({
      action: 'recopy',
      keys: ['in:a'],
    });
  });

  it('skips redis-dts internal keys, PUBLISH, PING and REPLCONF', () => {
    expect(decide(['SET', 'redis-dts:heartbeat:t1', '123'])).toEqual({ action: 'skip', reason: 'internal' });
    // Even with a predicate that would let them through.
    expect(decide(['DEL', 'redis-dts:marker:0'], { keep: () => true })).toEqual({
      action: 'skip',
      reason: 'internal',
    });
    expect(decideText(['RENAME', 'a', 'redis-dts:tmp:x'], { keep: () => true })).toMatchObject({
      action: 'recopy',
      keys: ['a'],
    });
    expect(decide(['PUBLISH', 'ch', 'm'])).toEqual({ action: 'skip', reason: 'publish' });
    expect(decide(['SPUBLISH', 'ch', 'm'])).toEqual({ action: 'skip', reason: 'publish' });
    expect(decide(['PING'])).toEqual({ action: 'skip', reason: 'ping' });
    expect(decide(['REPLCONF', 'GETACK', '*'])).toEqual({ action: 'skip', reason: 'replconf' });
  });

  it('reports a command outside the catalogue as an error naming it', () => {
    const d = decide(['MYMOD.SET', 'k', 'v']);
    expect(d.action).toBe('error');
    expect(d.action === 'error' && d.message).toMatch(/^MYMOD\.SET .*not in the command catalogue/);
    const sub = decide(['XGROUP', 'NOSUCH', 's']);
    expect(sub.action === 'error' && sub.message).toMatch(/^XGROUP NOSUCH /);
  });

  it('re-copies module commands by their keys, and refuses those whose keys it cannot know', () => {
    expect(decideText(['mymod.set', 'in:k', 'v'], { catalogue: moduleCatalogue, keep: onlyIn })).toEqual({
      action: 'recopy',
      db: 0,
      targetDb: 0,
      keys: ['in:k'],
      reason: 'server-command',
    });
    expect(decide(['mymod.set', 'out:k', 'v'], { catalogue: moduleCatalogue, keep: onlyIn })).toEqual({
      action: 'skip',
      reason: 'prefix',
    });
    expect(decideText(['MYMOD.GROUP', 'add', 'k', 'v'], { catalogue: moduleCatalogue })).toMatchObject({
      action: 'recopy',
      keys: ['k'],
    });
    expect(decide(['mymod.info'], { catalogue: moduleCatalogue })).toEqual({
      action: 'skip',
      reason: 'readonly',
    });
    const keyless = decide(['mymod.write'], { catalogue: moduleCatalogue });
    expect(keyless.action === 'error' && keyless.message).toMatch(/MYMOD\.WRITE .*no keys/);
    const odd = decide(['mymod.odd', 'k'], { catalogue: moduleCatalogue });
    expect(odd.action === 'error' && odd.message).toMatch(/MYMOD\.ODD: its key specs cannot locate/);
    // Core commands stay replayable as is when the catalogue came from the server.
    expect(decide(['SET', 'k', 'v'], { catalogue: moduleCatalogue })).toMatchObject({ action: 'apply' });
  });

  it('hands keyspace-wide commands to the caller with the dbs they touch', () => {
    expect(decideText(['FLUSHDB'], { dbMap: { 3: 4 } }, 3)).toEqual({
      action: 'keyspace',
      what: 'flushdb',
      dbs: [3],
      replayable: true,
      db: 4,
      argv: ['FLUSHDB'],
    });
    expect(decide(['FLUSHDB'], { selectedDbs: new Set([1]) }, 3)).toEqual({ action: 'skip', reason: 'db' });
    expect(decide(['FLUSHALL'])).toMatchObject({ action: 'keyspace', dbs: 'all', replayable: true });
    expect(decide(['FLUSHALL'], { selectedDbs: new Set([2, 0]) }, 5)).toMatchObject({
      action: 'keyspace',
      dbs: [0, 2],
      replayable: false,
    });
    expect(decide(['FLUSHALL'], { dbMap: { 0: 1 } })).toMatchObject({ replayable: false });
    expect(decideText(['SWAPDB', '0', '1'], { dbMap: { 0: 10, 1: 11 } }, 7)).toMatchObject({
      action: 'keyspace',
      what: 'swapdb',
      dbs: [0, 1],
      replayable: true,
      argv: ['SWAPDB', '10', '11'],
    });
    expect(decide(['SWAPDB', '0', '1'], { selectedDbs: new Set([1, 2]) })).toMatchObject({
      dbs: [1],
      replayable: false,
    });
    expect(decide(['SWAPDB', '3', '4'], { selectedDbs: new Set([0]) })).toEqual({
      action: 'skip',
      reason: 'db',
    });
    expect(decide(['SWAPDB', '0', '1'], { dbMap: { 0: 2, 1: 2 } }).action).toBe('error');
    // The source propagates SWAPDB n n (found by the replication property test): it changes nothing.
    expect(decide(['SWAPDB', '1', '1'])).toEqual({ action: 'skip', reason: 'no-op' });
  });

  it('rewrites MOVE through dbMap, or re-copies the key in the one selected db', () => {
    expect(decideText(['MOVE', 'k', '1'], { dbMap: { 0: 4, 1: 5 } })).toEqual({
      action: 'apply',
      db: 4,
      argv: ['MOVE', 'k', '5'],
      keys: ['k'],
      serverWide: false,
      // MOVE writes the key in the db it names too (a re-copy ahead there is looked for).
      otherDb: { db: 1, writes: [Buffer.from('k')], writesHere: true },
    });
    expect(decideText(['MOVE', 'k', '1'], { selectedDbs: new Set([0]) })).toMatchObject({
      action: 'recopy',
      db: 0,
      keys: ['k'],
      reason: 'db',
    });
    expect(decideText(['MOVE', 'k', '1'], { selectedDbs: new Set([1]), dbMap: { 1: 9 } })).toMatchObject({
      action: 'recopy',
      db: 1,
      targetDb: 9,
      keys: ['k'],
    });
    expect(decide(['MOVE', 'k', '1'], { selectedDbs: new Set([2]) })).toEqual({
      action: 'skip',
      reason: 'db',
    });
    expect(decide(['MOVE', 'out:k', '1'], { keep: onlyIn })).toEqual({ action: 'skip', reason: 'prefix' });
  });

  it('rewrites COPY … DB through dbMap, or re-copies the destination key in the other db', () => {
    expect(decideText(['COPY', 's', 'd', 'db', '1', 'REPLACE'], { dbMap: { 1: 3 } })).toMatchObject({
      action: 'apply',
      db: 0,
      argv: ['COPY', 's', 'd', 'db', '3', 'REPLACE'],
      otherDb: { db: 1, writes: [Buffer.from('d')], writesHere: false },
    });
    expect(decideText(['COPY', 's', 'd', 'DB', '1'], { selectedDbs: new Set([1]) })).toMatchObject({
      action: 'recopy',
      db: 1,
      keys: ['d'],
      reason: 'db',
    });
    expect(decide(['COPY', 's', 'd', 'DB', '1'], { selectedDbs: new Set([0]) })).toEqual({
      action: 'skip',
      reason: 'db',
    });
    expect(decideText(['COPY', 'out:s', 'in:d', 'DB', '1'], { keep: onlyIn })).toMatchObject({
      action: 'recopy',
      db: 1,
      keys: ['in:d'],
      reason: 'prefix',
    });
    // Without DB it is an ordinary two-key command of the current db.
    expect(decideText(['COPY', 's', 'd'], { dbMap: { 0: 2 } })).toMatchObject({ action: 'apply', db: 2 });
    expect(decide(['COPY', 's', 'd', 'DB', 'x']).action).toBe('error');
  });

  it('re-copies script calls by their declared keys; refuses keyless ones; skips read-only ones', () => {
    expect(decideText(['EVALSHA', 'abc', '2', 'in:a', 'out:b'], { keep: onlyIn })).toMatchObject({
      action: 'recopy',
      keys: ['in:a'],
      reason: 'script',
    });
    const keyless = decide(['EVAL', 'redis.call("set","x","1")', '0']);
    expect(keyless.action === 'error' && keyless.message).toMatch(/^EVAL declares no keys/);
    expect(decide(['EVAL_RO', 'return 1', '1', 'k'])).toEqual({ action: 'skip', reason: 'readonly' });
  });

  it('re-copies where replay is not faithful: SORT BY patterns, MIGRATE', () => {
    expect(decideText(['SORT', 'l', 'BY', 'w_*', 'STORE', 'd'])).toMatchObject({
      action: 'recopy',
      keys: ['d'],
      reason: 'incomplete',
    });
    expect(decide(['SORT', 'l', 'ALPHA', 'STORE', 'd'])).toMatchObject({ action: 'apply' });
    expect(decideText(['MIGRATE', 'h', '6379', '', '0', '100', 'KEYS', 'a', 'b'])).toMatchObject({
      action: 'recopy',
      keys: ['a', 'b'],
      reason: 'not-replayable',
    });
  });

  it('applies FUNCTION and SCRIPT LOAD server-wide whatever the db', () => {
    expect(decide(['FUNCTION', 'LOAD', 'code'], { selectedDbs: new Set([1]) }, 0)).toMatchObject({
      action: 'apply',
      keys: [],
      serverWide: true,
    });
    expect(decide(['SCRIPT', 'LOAD', 'return 1'])).toMatchObject({ action: 'apply', serverWide: true });
  });

  it('passes SELECT and MULTI/EXEC to the caller', () => {
    expect(decide(['select', '3'])).toEqual({ action: 'select', db: 3 });
    expect(decide(['SELECT', 'x']).action).toBe('error');
    expect(decide(['MULTI'])).toEqual({ action: 'transaction', what: 'multi' });
    expect(decide(['EXEC'])).toEqual({ action: 'transaction', what: 'exec' });
    expect(isSelect(argv('SeLeCt', '1'))).toBe(true);
    expect(isSelect(argv('SET', '1'))).toBe(false);
    expect(selectedDb(argv('SELECT', '15'))).toBe(15);
    expect(selectedDb(argv('SELECT', '-1'))).toBeUndefined();
  });

  it('skips read-only commands and applies keyless writes', () => {
    expect(decide(['GET', 'k'])).toEqual({ action: 'skip', reason: 'readonly' });
    // PFCOUNT is flagged readonly but may rewrite the key's cache, and its key spec says RW.
    expect(decide(['PFCOUNT', 'h'])).toMatchObject({ action: 'apply' });
  });
});

describe('CommandInfo shape in the table', () => {
  it('round-trips through JSON (what the generator writes is what the catalogue reads)', () => {
    const set = tableCommands().find((c) => c.name === 'set') as CommandInfo;
    expect(JSON.parse(JSON.stringify(set))).toEqual(set);
    expect(set.keySpecs?.[0]?.begin).toEqual({ type: 'index', index: 1 });
  });
});

describe('asciiLower (command names as the server folds them)', () => {
  it('lowers A-Z only, and leaves every other byte as it is', () => {
    expect(asciiLower(Buffer.from('HSeT'))).toBe('hset');
    expect(asciiLower(Buffer.from('xgroup|CREATE'))).toBe('xgroup|create');
    expect(asciiLower(Buffer.from(''))).toBe('');
    // Latin-1 capitals (À, Þ) are not ASCII: the server does not fold them, so neither may we.
    expect(asciiLower(Buffer.from([0xc0, 0x41, 0xde, 0x7a]))).toBe('\u00c0a\u00dez');
  });
});

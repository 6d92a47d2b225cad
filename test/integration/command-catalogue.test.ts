import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalogue, tableCatalogue } from '../../lib/commands/catalogue.ts';
import { tableCommands } from '../../lib/commands/catalogue-table.ts';
import {
  COMMAND_TABLE_FILE,
  COMMAND_TABLE_REDIS_VERSION,
  fetchCommandTable,
  renderCommandTable,
} from '../../lib/commands/catalogue-table-file.ts';
import type { Catalogue } from '../../lib/commands/catalogue-types.ts';
import { extractKeys } from '../../lib/commands/key-extraction.ts';
import { type RedisProcess, startRedis } from '../support/redis-server.ts';

const execFileAsync = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

// One realistic argv per command of the list (space-separated; no argument here contains a space).
const ARGVS = `
APPEND k v | BITOP AND dest k1 k2 | BLPOP l1 l2 0 | BRPOP l1 l2 5 | BRPOPLPUSH src dst 0 | DECR n | DECRBY n 2
DEL a b c | EVAL return 2 k1 k2 v | EVAL return 0 | EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff831 1 k arg | EXEC
EXPIRE k 10 | EXPIREAT k 1900000000 | GEOADD geo 13.361389 38.115556 Palermo | GETSET k v | HDEL h f1 f2
HINCRBY h f 1 | HINCRBYFLOAT h f 1.5 | HMSET h f1 v1 f2 v2 | HSET h f v | HSETNX h f v | INCR n | INCRBY n 5
INCRBYFLOAT n 0.5 | LINSERT l BEFORE pivot v | LPOP l | LPUSH l a b | LPUSHX l a | LREM l 0 a | LSET l 0 a
LTRIM l 0 -1 | MOVE k 3 | MSET a 1 b 2 c 3 | MSETNX a 1 b 2 | MULTI | PERSIST k | PEXPIRE k 1000
PEXPIREAT k 1900000000000 | PFADD hll a b | PFMERGE dst s1 s2 | PSETEX k 100 v | RENAME a b | RENAMENX a b
RESTORE k 0 payload REPLACE ABSTTL | RPOP l 2 | RPOPLPUSH src dst | RPUSH l a | RPUSHX l a | SADD s m1 m2
SDIFFSTORE d s1 s2 | SELECT 2 | SET k v | SETBIT k 7 1 | SETEX k 10 v | SETNX k v | SETRANGE k 0 v
SINTERSTORE d s1 s2 | SMOVE src dst m | SPOP s | SREM s m | SUNIONSTORE d s1 s2 | ZADD z NX 1 a 2 b
ZINCRBY z 1 a | ZINTERSTORE d 2 z1 z2 WEIGHTS 1 2 | ZREM z a | ZREMRANGEBYLEX z [a [c
ZUNIONSTORE d 3 z1 z2 z3 AGGREGATE MAX | ZREMRANGEBYRANK z 0 1 | ZREMRANGEBYSCORE z -inf (5 | SWAPDB 0 1
UNLINK a b | XADD s MAXLEN ~ 100 * f v | XCLAIM s g c 0 1-0 TIME 1700000000000 RETRYCOUNT 1 FORCE JUSTID
XDEL s 1-0 2-0 | XAUTOCLAIM s g c 0 0-0 COUNT 10 | XGROUP CREATECONSUMER s g c | XTRIM s MAXLEN 10
SET k v PXAT 1900000000000 | GETDEL k | GETEX k PERSIST | LMOVE src dst LEFT RIGHT | BLMOVE src dst LEFT RIGHT 0
LMPOP 2 l1 l2 LEFT COUNT 3 | ZMPOP 2 z1 z2 MIN | COPY src dst DB 2 REPLACE | ZRANGESTORE d z 0 -1
ZDIFFSTORE d 2 z1 z2 | XSETID s 5-0 ENTRIESADDED 5 MAXDELETEDID 0-0 | XGROUP CREATE s g $ MKSTREAM
XGROUP SETID s g 0 ENTRIESREAD 0 | XGROUP DESTROY s g | XGROUP DELCONSUMER s g c | XACK s g 1-0 2-0
FUNCTION LOAD code | FUNCTION DELETE lib | FUNCTION FLUSH ASYNC | FLUSHDB | FLUSHALL ASYNC | SCRIPT LOAD return
PUBLISH channel message | XREADGROUP GROUP g c COUNT 1 STREAMS s1 s2 > > | XREAD COUNT 2 STREAMS a b c 0 0 0
GEORADIUS geo 15 37 200 km ASC STORE dst | GEOSEARCHSTORE dst src FROMLONLAT 15 37 BYRADIUS 200 km
SINTERCARD 2 s1 s2 LIMIT 1 | SORT l LIMIT 0 10 ALPHA STORE dst | SORT l BY w_* GET # STORE dst
MIGRATE 127.0.0.1 6380 "" 0 5000 COPY AUTH2 u p KEYS a b | MIGRATE 127.0.0.1 6380 k 0 5000
`
  .split(/[|\n]/)
  .map((line) => line.trim())
  .filter(Boolean)
  .map((line) => line.split(' ').map((w) => (w === '""' ? '' : w)));

const toBuffers = (words: string[]) => words.map((w) => Buffer.from(w));
const keysOf = (cat: Catalogue, words: string[]) => extractKeys(cat, toBuffers(words)).keys.map(String);

function client(server: RedisProcess, extra: { username?: string; password?: string } = {}): Redis {
  return new Redis({
    host: server.host,
    port: server.port,
    protocol: 2,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    ...extra,
  });
}

async function serverVersion(server: RedisProcess): Promise<string> {
  return /^redis_version:(\S+)/m.exec(await server.cli('INFO', 'server'))?.[1] ?? 'unknown';
}

describe('the catalogue from a live server', () => {
  let server: RedisProcess;
  let redis: Redis;
  let version: string;

  beforeAll(async () => {
    server = await startRedis();
    redis = client(server);
    version = await serverVersion(server);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('reads key specs from COMMAND and finds the same keys as the checked-in table and as COMMAND GETKEYS', async () => {
    const live = await loadCatalogue(redis);
    expect(live.source).toBe('server');
    expect(live.fallbackReason).toBeUndefined();
    const table = tableCatalogue();
    for (const words of ARGVS) {
      const label = words.join(' ');
      const ours = keysOf(live, words);
      expect(ours, label).toEqual(keysOf(table, words));
      const kind = extractKeys(live, toBuffers(words)).kind;
      if (kind === 'keyspace') continue;
      // COMMAND GETKEYS wants arguments; a bare MULTI or EXEC has no keys anyway.
      if (words.length === 1) {
        expect(ours, label).toEqual([]);
        continue;
      }
      let server: string[];
      try {
        server = ((await redis.call('COMMAND', 'GETKEYS', ...words)) as string[]).map(String);
      } catch (e) {
        // Keyless commands, and EVAL with no keys: the server answers with an error instead of [].
        expect((e as Error).message, label).toMatch(/no key arguments|Invalid arguments/);
        server = [];
      }
      expect(ours, label).toEqual(server);
    }
  });

  it('agrees with the checked-in table on every command of a 7.0 server', async (ctx) => {
    if (!version.startsWith(`${COMMAND_TABLE_REDIS_VERSION}.`)) {
      ctx.skip(`local redis-server is ${version}, the table is from ${COMMAND_TABLE_REDIS_VERSION}`);
    }
    const live = await loadCatalogue(redis);
    for (const info of tableCommands()) {
      const spec = live.commands.get(info.name);
      expect(spec?.origin, info.name).toBe('table');
      const { name, arity, flags, keySpecs, subcommands } = spec!;
      const picked = subcommands
        ? { name, arity, flags, keySpecs, subcommands }
        : { name, arity, flags, keySpecs };
      expect(picked, info.name).toEqual(info);
    }
  });
});

describe('falling back to the checked-in table', () => {
  let renamed: RedisProcess;
  let guarded: RedisProcess;

  beforeAll(async () => {
    [renamed, guarded] = await Promise.all([
      startRedis({ args: ['--rename-command', 'COMMAND', '""'] }),
      startRedis(),
    ]);
    await guarded.cli('ACL', 'SETUSER', 'nocommand', 'on', '>pw', '~*', '&*', '+@all', '-command');
  });
  afterAll(async () => {
    await Promise.all([renamed?.stop(), guarded?.stop()]);
  });

  it('uses the table when COMMAND is renamed away', async () => {
    const redis = client(renamed);
    try {
      await expect(redis.call('COMMAND')).rejects.toThrow(/unknown command/i);
      const cat = await loadCatalogue(redis);
      expect(cat.source).toBe('table');
      expect(cat.fallbackReason).toMatch(/^COMMAND failed: .*unknown command/i);
      for (const words of ARGVS) expect(keysOf(cat, words)).toEqual(keysOf(tableCatalogue(), words));
      expect(keysOf(cat, ['ZUNIONSTORE', 'd', '2', 'a', 'b'])).toEqual(['d', 'a', 'b']);
    } finally {
      redis.disconnect();
    }
  });

  it('uses the table when the ACL user may not run COMMAND', async () => {
    const redis = client(guarded, { username: 'nocommand', password: 'pw' });
    try {
      const cat = await loadCatalogue(redis);
      expect(cat.source).toBe('table');
      expect(cat.fallbackReason).toMatch(/NOPERM/);
      expect(keysOf(cat, ['XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', 's', '>'])).toEqual(['s']);
    } finally {
      redis.disconnect();
    }
  });
});

describe('the checked-in table is in step with the local redis-server', () => {
  let server: RedisProcess;
  let version: string;

  beforeAll(async () => {
    server = await startRedis();
    version = await serverVersion(server);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('equals what the generator renders from COMMAND', async (ctx) => {
    if (!version.startsWith(`${COMMAND_TABLE_REDIS_VERSION}.`)) {
      ctx.skip(`local redis-server is ${version}, the table is from ${COMMAND_TABLE_REDIS_VERSION}`);
    }
    const redis = client(server);
    try {
      const rendered = renderCommandTable(await fetchCommandTable(redis));
      expect(rendered).toBe(readFileSync(`${repoRoot}${COMMAND_TABLE_FILE}`, 'utf8'));
    } finally {
      redis.disconnect();
    }
  });

  it('passes bin/generate-command-table.ts --check', async (ctx) => {
    if (!version.startsWith(`${COMMAND_TABLE_REDIS_VERSION}.`)) {
      ctx.skip(`local redis-server is ${version}, the table is from ${COMMAND_TABLE_REDIS_VERSION}`);
    }
    const { stdout } = await execFileAsync(process.execPath, ['bin/generate-command-table.ts', '--check'], {
      cwd: repoRoot,
    });
    expect(stdout).toContain(`${COMMAND_TABLE_FILE} is up to date`);
  });

  it('makes the generator fail loudly when it cannot start the server', async () => {
    const run = execFileAsync(
      process.execPath,
      ['bin/generate-command-table.ts', '--check', '--redis-server', '/nonexistent/redis-server'],
      { cwd: repoRoot },
    );
    await expect(run).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/^error: cannot start/),
    });
  });
});

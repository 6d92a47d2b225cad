import { Cluster, Redis, ReplyError } from 'ioredis';

export interface WritersOptions {
  url: string;
  /** Dbs each op picks from at random (default [0, 1]). */
  dbs?: number[];
  /** Concurrent writers, each with its own client per db (default 4). */
  writers?: number;
  /** Key space per type and db: key names are `${prefix}<type>:<0..keys-1>` (default 200). */
  keys?: number;
  /** Default 'w:'. */
  prefix?: string;
  /** Ops per second per writer; absent = as fast as possible with one op in flight per writer. */
  ratePerWriter?: number;
  /** Makes the sequence of ops (not their interleaving across writers) repeatable. */
  seed?: number;
  /**
   * `url` is a node of a Redis Cluster: write through a cluster client (db 0), and give each op's keys one
   * of 16 hash tags so that its multi-key commands (RENAME, RPOPLPUSH, MULTI, EVAL) stay in one slot.
   */
  cluster?: boolean;
  /**
   * Seconds of the expiries EXPIRE, SETEX and SET PX give (default 100..1000). A test longer than the
   * shortest must raise it: a key expiring on the source while the sync lags behind it expires on the
   * destination by its own clock, the limit the README names.
   */
  longTtlSeconds?: readonly [number, number];
  /**
   * 'relative' (default): EXPIRE, SETEX, SET … PX, PEXPIRE, as clients write them. 'absolute': the same
   * expiries as PEXPIREAT at the writer's clock (SETEX becomes a plain SET), so that a pre-7.0 source,
   * which propagates relative expiries as they are, has nothing to place by its clock.
   */
  expiries?: 'relative' | 'absolute';
}

export interface WriterStats {
  ops: number;
  errors: number;
  /** Ops by kind: a command name, or MULTI / EVAL for the compound ones. */
  byCommand: Record<string, number>;
}

export interface Writers {
  /** Lets every writer finish its current op, closes the clients and resolves with the totals. */
  stop(): Promise<WriterStats>;
  readonly ops: number;
  readonly errors: number;
}

type Arg = string | Buffer | number;
type Command = [name: string, ...args: Arg[]];
type Client = Redis | Cluster;
type Random = () => number;

interface Op {
  kind: string;
  run(client: Client): Promise<boolean>;
}

/** Two writes on declared keys, so the script is replicable under both script and effects replication. */
const EVAL_SCRIPT = "redis.call('INCR', KEYS[1]); return redis.call('LPUSH', KEYS[2], ARGV[1])";
/** Far enough that no key the writers gave a TTL vanishes while a test is still comparing. */
const LONG_TTL_S = [100, 1000] as const;
/** Short enough that real expiry (and the DEL it propagates) happens during a test. */
const VOLATILE_TTL_MS = [50, 500] as const;
/** After a connection failure (not a Redis reply), so a dead server does not turn the loop into a spin. */
const FAILURE_PAUSE_MS = 20;
/** How long stop() lets the writers finish their commands in flight before it disconnects them. */
const STOP_GRACE_MS = 10_000;

/**
 * Starts concurrent writers issuing a mix of non-idempotent commands (INCR, LPUSH, RPOPLPUSH, XADD *,
 * EXPIRE, RENAME, MULTI/EXEC, EVAL, short-lived keys...), so a replica that drops, repeats or reorders
 * anything ends up with a different dataset. Error replies (e.g. RENAME of a missing key) are counted,
 * not thrown.
 */
export function startWriters(o: WritersOptions): Writers {
  const dbs = o.dbs ?? [0, 1];
  const writerCount = o.writers ?? 4;
  const keys = o.keys ?? 200;
  const prefix = o.prefix ?? 'w:';
  const intervalMs = o.ratePerWriter ? 1000 / o.ratePerWriter : 0;
  const baseSeed = o.seed ?? Math.floor(Math.random() * 2 ** 32);
  const stats: WriterStats = { ops: 0, errors: 0, byCommand: {} };
  let stopping = false;
  const clients: Client[] = [];
  const sleeps = new Set<() => void>();

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        sleeps.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleeps.add(wake);
    });
  }

  async function runWriter(index: number): Promise<void> {
    const random = mulberry32(baseSeed + index * 0x9e3779b9);
    const perDb = (o.cluster ? [0] : dbs).map((db) => {
      // RESP2 so the writers also run against sources older than Redis 6 (no HELLO).
      const client: Client = o.cluster
        ? clusterClient(o.url)
        : new Redis(o.url, { db, protocol: 2, maxRetriesPerRequest: 0 });
      // Failures surface as rejected commands; without a listener ioredis logs every one.
      client.on('error', () => {});
      clients.push(client);
      return client;
    });
    const gen = opGenerator(
      random,
      keys,
      prefix,
      o.cluster === true,
      o.expiries === 'absolute',
      o.longTtlSeconds,
    );
    let next = Date.now();
    while (!stopping) {
      const client = pick(random, perDb);
      const op = gen();
      stats.ops++;
      stats.byCommand[op.kind] = (stats.byCommand[op.kind] ?? 0) + 1;
      try {
        if (!(await op.run(client))) stats.errors++;
      } catch (e) {
        stats.errors++;
        if (!(e instanceof ReplyError)) await sleep(FAILURE_PAUSE_MS);
      }
      if (intervalMs > 0) {
        next += intervalMs;
        const wait = next - Date.now();
        if (wait > 0) await sleep(wait);
        else next = Date.now();
      }
    }
  }

  const loops = Array.from({ length: writerCount }, (_, i) => runWriter(i));
  let stopped: Promise<WriterStats> | undefined;

  return {
    get ops() {
      return stats.ops;
    },
    get errors() {
      return stats.errors;
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        for (const wake of [...sleeps]) wake();
        // A command can wait in a cluster client's offline queue while it refreshes its slot map (slow
        // under load): after a grace period, disconnecting rejects it, so stop() always ends.
        let grace: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all(loops),
          new Promise<void>((r) => {
            grace = setTimeout(r, STOP_GRACE_MS);
          }),
        ]);
        clearTimeout(grace);
        for (const c of clients) c.disconnect();
        await Promise.all(loops);
        return { ops: stats.ops, errors: stats.errors, byCommand: { ...stats.byCommand } };
      })();
      return stopped;
    },
  };
}

/** Returns a function producing the next random op. Each key type has its own names to keep WRONGTYPE rare. */
function opGenerator(
  random: Random,
  keys: number,
  prefix: string,
  cluster: boolean,
  absolute: boolean,
  longTtl: readonly [number, number] = LONG_TTL_S,
): () => Op {
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  // On a cluster every key of one op shares the op's hash tag.
  let tag = '';
  const key = (type: string) => `${prefix}${tag}${type}:${int(0, keys - 1)}`;
  const anyKey = () =>
    key(pick(random, ['counter', 'float', 'str', 'list', 'hash', 'zset', 'set', 'stream']));
  const expireIn = (k: string, ms: number): Command =>
    absolute
      ? ['PEXPIREAT', k, Date.now() + ms]
      : ms % 1000 === 0
        ? ['EXPIRE', k, ms / 1000]
        : ['PEXPIRE', k, ms];
  const value = (): Arg => (random() < 0.15 ? binaryValue(random) : `v${int(0, 1_000_000)}`);
  const member = (): Arg => (random() < 0.1 ? binaryValue(random) : `m${int(0, 50)}`);

  // Single commands, each weighted by how often it appears in the mix.
  const single: [weight: number, make: () => Command][] = [
    [10, () => ['INCR', key('counter')]],
    [5, () => ['INCRBYFLOAT', key('float'), (random() * 10 - 5).toFixed(int(0, 4))]],
    [10, () => ['LPUSH', key('list'), value()]],
    [5, () => ['RPOPLPUSH', key('list'), key('list')]],
    [6, () => ['APPEND', key('str'), value()]],
    [8, () => ['HINCRBY', key('hash'), `f${int(0, 20)}`, int(-100, 100)]],
    [6, () => ['ZINCRBY', key('zset'), int(-50, 50), member()]],
    [6, () => ['SADD', key('set'), member()]],
    [4, () => ['SREM', key('set'), member()]],
    [4, () => expireIn(anyKey(), int(...longTtl) * 1000)],
    [2, () => ['PERSIST', anyKey()]],
    [2, () => ['DEL', anyKey()]],
    [3, () => ['RENAME', key('str'), key('str')]],
    [6, () => ['XADD', key('stream'), '*', 'f', value(), 'n', int(0, 1000)]],
    [2, () => ['XTRIM', key('stream'), 'MAXLEN', ...(random() < 0.5 ? ['~'] : []), 50]],
    [2, () => (absolute ? ['SET', key('str'), value()] : ['SETEX', key('str'), int(...longTtl), value()])],
    [
      2,
      () =>
        absolute
          ? expireIn(key('str'), int(...longTtl) * 1000)
          : ['SET', key('str'), value(), 'PX', int(...longTtl) * 1000],
    ],
  ];
  const pickSingle = weighted(random, single);

  const command = (cmd: Command): Op => ({
    kind: cmd[0],
    run: async (client) => {
      await client.callBuffer(...cmd);
      return true;
    },
  });

  const compound: [weight: number, make: () => Op][] = [
    [90, () => command(pickSingle())],
    [
      4,
      () => {
        const cmds = Array.from({ length: int(3, 4) }, () => pickSingle());
        return {
          kind: 'MULTI',
          run: async (client) => {
            const replies = await client.multi(cmds.map((cmd) => ['call', ...cmd])).exec();
            return !!replies && replies.every(([err]) => !err);
          },
        };
      },
    ],
    [
      4,
      () => {
        const args: Arg[] = [EVAL_SCRIPT, 2, key('counter'), key('list'), value()];
        return command(['EVAL', ...args]);
      },
    ],
    [
      2,
      () => {
        // Written without a TTL first so the key really exists when PEXPIRE gives it a short one.
        const k = key('volatile');
        const ms = int(...VOLATILE_TTL_MS);
        return {
          kind: 'PEXPIRE',
          run: async (client) => {
            await client.callBuffer('SET', k, value());
            return (await client.callBuffer(...expireIn(k, ms))) === 1;
          },
        };
      },
    ],
  ];
  const next = weighted(random, compound);
  return () => {
    if (cluster) tag = `{g${int(0, 15)}}`;
    return next();
  };
}

function clusterClient(url: string): Cluster {
  const u = new URL(url);
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  return new Cluster([{ host: u.hostname, port: Number(u.port) }], {
    redisOptions: { protocol: 2, maxRetriesPerRequest: 0, ...(password ? { password } : {}) },
    maxRedirections: 16,
  });
}

function weighted<T>(random: Random, table: [number, () => T][]): () => T {
  const total = table.reduce((sum, [w]) => sum + w, 0);
  return () => {
    let r = random() * total;
    for (const [w, make] of table) {
      r -= w;
      if (r < 0) return make();
    }
    // Only reachable through floating-point rounding at the very top of the range.
    const last = table[table.length - 1];
    if (!last) throw new Error('empty table');
    return last[1]();
  };
}

function pick<T>(random: Random, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

/** Bytes no string conversion survives: NUL, 0xff and a few random ones. */
function binaryValue(random: Random): Buffer {
  const extra = Array.from({ length: Math.floor(random() * 8) }, () => Math.floor(random() * 256));
  return Buffer.from([0x00, 0xff, ...extra, 0xfe, 0x00]);
}

/** A seeded PRNG: the same sequence for a seed on every platform (the property generator uses it too). */
export function mulberry32(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

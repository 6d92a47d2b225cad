import { inspect } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DtsError } from '../../lib/errors.ts';
import type { RedisEndpoint } from '../../lib/redis/endpoint.ts';
import { RawConnection } from '../../lib/redis/raw-connection.ts';
import type { CommandArg } from '../../lib/redis/resp.ts';
import { captureStart } from '../../lib/replication/capture-start.ts';
import { PsyncClient, type PsyncOptions, type RdbInfo } from '../../lib/replication/psync-client.ts';
import { failure } from '../support/failure.ts';
import { freePort, type RedisProcess, startRedis, stopAllRedis } from '../support/redis-server.ts';

interface Cmd {
  argv: string[];
  end: number;
}

/** A replication consumer that records everything it is given. */
interface Recorder {
  client: PsyncClient;
  commands: Cmd[];
  rdbBytes: number;
  rdbHead: Buffer;
  rdbInfo: RdbInfo | undefined;
  closes: (Error | undefined)[];
}

const servers: RedisProcess[] = [];
const links: PsyncClient[] = [];
const conns: RawConnection[] = [];

afterEach(async () => {
  await Promise.all(links.splice(0).map((l) => l.close()));
  for (const c of conns.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});
afterAll(stopAllRedis);

async function server(args: string[] = [], password?: string): Promise<RedisProcess> {
  const s = await startRedis({ args, password });
  servers.push(s);
  return s;
}

function endpoint(s: RedisProcess, auth: { username?: string; password?: string } = {}): RedisEndpoint {
  return { role: 'source', host: s.host, port: s.port, ...auth };
}

async function writer(s: RedisProcess, db = 0, password?: string): Promise<RawConnection> {
  const c = await RawConnection.open({ ...endpoint(s), password }, { db });
  conns.push(c);
  return c;
}

async function record(ep: RedisEndpoint, opts: Partial<PsyncOptions> = {}): Promise<Recorder> {
  const rec: Omit<Recorder, 'client'> & { client?: PsyncClient } = {
    commands: [],
    rdbBytes: 0,
    rdbHead: Buffer.alloc(0),
    rdbInfo: undefined,
    closes: [],
  };
  const client = await PsyncClient.connect(ep, {
    rdb: (chunk) => {
      rec.rdbBytes += chunk.length;
      // The magic and version: 'REDIS0010'.
      if (rec.rdbHead.length < 9) {
        rec.rdbHead = Buffer.concat([rec.rdbHead, chunk.subarray(0, 9 - rec.rdbHead.length)]);
      }
    },
    onRdbEnd: (info) => {
      rec.rdbInfo = info;
    },
    onCommand: (argv, end) => {
      rec.commands.push({ argv: argv.map((a) => a.toString('latin1')), end });
    },
    onClose: (err) => {
      rec.closes.push(err);
    },
    ...opts,
  });
  links.push(client);
  rec.client = client;
  return rec as Recorder;
}

/** Polls until cond holds; the bound only keeps a broken build from hanging (not a timing assertion). */
async function waitFor(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function replicationInfo(s: RedisProcess): Promise<string> {
  return s.cli('INFO', 'replication');
}

async function masterOffset(s: RedisProcess): Promise<number> {
  return Number(/master_repl_offset:(\d+)/.exec(await replicationInfo(s))?.[1]);
}

/** The offset the master last got acknowledged by the replica that announced `port`. */
async function ackedOffset(s: RedisProcess, port: number): Promise<number | undefined> {
  const m = new RegExp(`slave\\d+:ip=[^,]*,port=${port},state=\\w+,offset=(\\d+)`).exec(
    await replicationInfo(s),
  );
  return m ? Number(m[1]) : undefined;
}

const lastEnd = (r: Recorder) => r.commands.at(-1)?.end ?? -1;
const withoutPings = (cmds: Cmd[]) => cmds.filter((c) => c.argv[0] !== 'PING');

/**
 * Keyed commands tagged with the db the stream's SELECTs put them in; MULTI/EXEC kept bare (Redis 7.0
 * puts the SELECT inside the transaction, older versions before it).
 */
function withDb(cmds: Cmd[]): string[] {
  let db: string | undefined;
  const out: string[] = [];
  for (const { argv } of cmds) {
    const name = argv[0]!.toUpperCase();
    if (name === 'SELECT') db = argv[1];
    else if (name === 'MULTI' || name === 'EXEC') out.push(name);
    else if (name !== 'PING') out.push(`${db}:${argv.join(' ')}`);
  }
  return out;
}

describe.each([
  ['disk-based', 'no'],
  ['diskless', 'yes'],
])('full resync, %s RDB', (_label, diskless) => {
  it('drains the RDB, then streams the writes with their SELECTs and transactions', async () => {
    const s = await server(['--repl-diskless-sync', diskless]);
    await s.cli('DEBUG', 'POPULATE', '2000', 'seed', '100');
    const rec = await record(endpoint(s), { listeningPort: 40001 });
    expect(rec.client.result.mode).toBe('fullresync');
    expect(rec.client.result.replid).toMatch(/^[0-9a-f]{40}$/);
    await waitFor(() => rec.rdbInfo !== undefined, 'the end of the RDB');
    expect(rec.rdbInfo).toEqual({ bytes: rec.rdbBytes, diskless: diskless === 'yes' });
    expect(rec.rdbHead.toString('latin1')).toMatch(/^REDIS\d{4}$/);
    // 2000 keys (values compress well) cannot fit in less.
    expect(rec.rdbBytes).toBeGreaterThan(20_000);

    const db0 = await writer(s, 0);
    const db2 = await writer(s, 2);
    const binary = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x2a, 0x24]);
    await db0.call(['SET', 'a', '1']);
    await db2.call(['SET', 'b', '2']);
    const tx = await db0.pipeline([['MULTI'], ['INCR', 'c'], ['LPUSH', 'l', 'x'], ['EXEC']]);
    expect(tx[3]).toEqual([1, 1]);
    await db0.call(['SET', binary, binary]);
    const m = await masterOffset(s);
    await waitFor(() => lastEnd(rec) >= m, 'the stream to reach the master offset');

    const bin = binary.toString('latin1');
    expect(withDb(rec.commands)).toEqual([
      '0:SET a 1',
      '2:SET b 2',
      'MULTI',
      '0:INCR c',
      '0:LPUSH l x',
      'EXEC',
      `0:SET ${bin} ${bin}`,
    ]);
    expect(rec.commands.some((c) => c.argv[0] === 'SELECT' && c.argv[1] === '2')).toBe(true);
    // The offset of the last command is the master's offset: the offset arithmetic is exact.
    expect(rec.commands.map((c) => c.end)).toContain(m);
    expect(rec.commands[0]!.end).toBeGreaterThan(rec.client.result.startOffset);
  });

  it('ends a write burst exactly at the master_repl_offset', async () => {
    const s = await server(['--repl-diskless-sync', diskless]);
    const rec = await record(endpoint(s));
    const w = await writer(s);
    const burst: CommandArg[][] = [];
    for (let i = 0; i < 3000; i++) burst.push(['SET', `k${i}`, 'v'.repeat(i % 300)]);
    await w.pipeline(burst);
    const m = await masterOffset(s);
    await waitFor(() => lastEnd(rec) >= m, 'the burst');
    const sets = rec.commands.filter((c) => c.argv[0] === 'SET');
    expect(sets).toHaveLength(3000);
    expect(sets.at(-1)!.argv).toEqual(['SET', 'k2999', 'v'.repeat(2999 % 300)]);
    expect(sets.at(-1)!.end).toBe(m);
    // Strictly increasing offsets, each command's length apart.
    for (let i = 1; i < rec.commands.length; i++) {
      expect(rec.commands[i]!.end).toBeGreaterThan(rec.commands[i - 1]!.end);
    }
    expect(rec.client.receivedOffset).toBe(lastEnd(rec));
  });
});

describe('+CONTINUE', () => {
  it('resumes with exactly the commands after the offset, as a reference replica saw them', async () => {
    const s = await server();
    const reference = await record(endpoint(s));
    const { replid, startOffset } = reference.client.result;
    const w = await writer(s);

    // A second link continues the same history from the start, reads ten commands and drops.
    const first: Cmd[] = [];
    let stopAt = -1;
    const partial = await PsyncClient.connect(endpoint(s), {
      replid,
      offset: startOffset,
      rdb: 'discard',
      onCommand: (argv, end) => {
        first.push({ argv: argv.map(String), end });
        if (first.length === 10) {
          stopAt = end;
          void partial.close();
        }
      },
    });
    links.push(partial);
    expect(partial.result).toEqual({ mode: 'continue', replid, startOffset });

    const batch = (from: number) =>
      Array.from({ length: 20 }, (_, i): CommandArg[] => ['RPUSH', 'list', `item-${from + i}`]);
    await w.pipeline(batch(0));
    await waitFor(() => stopAt >= 0 && partial.closed, 'the first ten commands');
    expect(first).toHaveLength(10);

    // Writes while the link is down are kept in the backlog.
    await w.pipeline(batch(20));
    await w.call(['INCRBY', 'n', '5']);

    const rest = await record(endpoint(s), { replid, offset: stopAt });
    expect(rest.client.result).toEqual({ mode: 'continue', replid, startOffset: stopAt });
    await w.pipeline(batch(40));
    const m = await masterOffset(s);
    await waitFor(() => lastEnd(rest) >= m && lastEnd(reference) >= m, 'both links to catch up');

    const joined = [...first, ...rest.commands].filter((c) => c.end <= m);
    expect(joined).toEqual(reference.commands.filter((c) => c.end <= m));
    expect(joined.filter((c) => c.argv[0] === 'RPUSH')).toHaveLength(60);
    expect(rest.commands[0]!.end).toBeGreaterThan(stopAt);
  });

  it('says fullresync when the offset has left a small backlog', async () => {
    const s = await server(['--repl-backlog-size', '16kb']);
    const first = await record(endpoint(s));
    const { replid } = first.client.result;
    const w = await writer(s);
    await w.call(['SET', 'x', '1']);
    const m0 = await masterOffset(s);
    await waitFor(() => lastEnd(first) >= m0, 'the first write');
    const resumeFrom = lastEnd(first);
    await first.client.close();

    const big = 'v'.repeat(1024);
    await w.pipeline(Array.from({ length: 100 }, (_, i): CommandArg[] => ['SET', `k${i}`, big]));
    expect((await masterOffset(s)) - resumeFrom).toBeGreaterThan(16 * 1024);

    const again = await record(endpoint(s), { replid, offset: resumeFrom, rdb: 'discard' });
    expect(again.client.result.mode).toBe('fullresync');
    expect(again.client.result.replid).toBe(replid);
    expect(again.client.result.startOffset).toBeGreaterThan(resumeFrom + 16 * 1024);
  });
});

describe('acknowledgements', () => {
  it('answers REPLCONF GETACK at once, so WAIT sees the write acknowledged', async () => {
    // Disk-based: the master streams right after the RDB. (A diskless master waits for an ACK that it may
    // only count after it has reaped the RDB child, which the next periodic ACK provides.)
    const s = await server(['--repl-diskless-sync', 'no']);
    // No periodic ACK: only the GETACK answer can satisfy WAIT.
    const rec = await record(endpoint(s), { ackIntervalMs: 3_600_000 });
    const w = await writer(s);
    const reply = await w.pipeline([
      ['SET', 'k', 'v'],
      ['WAIT', '1', '60000'],
    ]);
    expect(reply[1]).toBe(1);
    expect(rec.commands.some((c) => c.argv.join(' ').toUpperCase() === 'REPLCONF GETACK *')).toBe(true);
  });

  it('reports the received offset by default, and the consumer offset after ack()', async () => {
    const s = await server();
    const auto = await record(endpoint(s), { listeningPort: 40011 });
    const manual = await record(endpoint(s), { listeningPort: 40012, ackIntervalMs: 100 });
    // The master only ever raises a replica's acked offset, so the consumer takes over before any ACK.
    manual.client.ack(manual.client.result.startOffset);
    const w = await writer(s);
    await w.pipeline(Array.from({ length: 10 }, (_, i): CommandArg[] => ['SET', `k${i}`, 'v']));
    const m = await masterOffset(s);
    await waitFor(() => lastEnd(auto) >= m && lastEnd(manual) >= m, 'the writes');

    await waitFor(async () => (await ackedOffset(s, 40011)) === m, 'the received offset to be acked');
    expect(auto.client.ackOffset).toBe(auto.client.receivedOffset);

    // The consumer says it applied only up to the fifth command.
    const applied = manual.commands[4]!.end;
    expect(applied).toBeLessThan(m);
    manual.client.ack(applied);
    await waitFor(async () => (await ackedOffset(s, 40012)) === applied, 'the applied offset to be acked');
    manual.client.ack(m);
    await waitFor(async () => (await ackedOffset(s, 40012)) === m, 'the final offset to be acked');
  });
});

describe('back-pressure', () => {
  it('delivers nothing while paused, even from a chunk already read, and everything after resume', async () => {
    const s = await server();
    const reference = await record(endpoint(s));
    let pauseAfter = 7;
    const rec = await record(endpoint(s), {
      onCommand: (argv, end) => {
        rec.commands.push({ argv: argv.map(String), end });
        if (argv[0]!.toString() === 'SET' && --pauseAfter === 0) rec.client.pause();
      },
    });
    const w = await writer(s);
    // One pipeline: the commands arrive in a few large chunks, so the pause lands mid-chunk.
    await w.pipeline(Array.from({ length: 2000 }, (_, i): CommandArg[] => ['SET', `k${i}`, 'v']));
    const m = await masterOffset(s);
    await waitFor(() => lastEnd(reference) >= m, 'the reference to receive the burst');
    await new Promise((r) => setTimeout(r, 300));
    expect(rec.client.paused).toBe(true);
    const whilePaused = withoutPings(rec.commands).filter((c) => c.argv[0] === 'SET');
    expect(whilePaused).toHaveLength(7);
    expect(rec.client.receivedOffset).toBe(rec.commands.at(-1)!.end);

    rec.client.resume();
    await waitFor(() => lastEnd(rec) >= m, 'the paused link to catch up');
    const upTo = (cmds: Cmd[]) => cmds.filter((c) => c.end <= m);
    expect(upTo(rec.commands)).toEqual(upTo(reference.commands));
    expect(upTo(rec.commands).filter((c) => c.argv[0] === 'SET')).toHaveLength(2000);
    expect(rec.closes).toEqual([]);
  });
});

describe('link lifecycle', () => {
  it('reports a dropped link through onClose with a DtsError, and a requested close with undefined', async () => {
    const s = await server();
    const dropped = await record(endpoint(s));
    const closed = await record(endpoint(s));
    await closed.client.close();
    expect(closed.closes).toEqual([undefined]);

    await waitFor(async () => /slave\d+:.*state=online/.test(await replicationInfo(s)), 'the replica online');
    await s.cli('CLIENT', 'KILL', 'TYPE', 'replica');
    await waitFor(() => dropped.closes.length > 0, 'the drop');
    const err = dropped.closes[0];
    expect(err).toBeInstanceOf(DtsError);
    expect((err as DtsError).code).toBe('REPLICATION_LINK_LOST');
    expect((err as DtsError).fix).toMatch(/PSYNC <replid> <applied offset \+ 1>/);
    expect(dropped.client.closed).toBe(true);
  });
});

describe('errors', () => {
  const PASSWORD = 'Repl-S3cret';

  function expectDtsError(err: unknown, code: string): DtsError {
    expect(err).toBeInstanceOf(DtsError);
    const e = err as DtsError;
    expect(e.code).toBe(code);
    expect(`${e.message}\n${e.fix}\n${inspect(e, { depth: 10 })}`).not.toContain(PASSWORD);
    return e;
  }

  const opts: PsyncOptions = { rdb: 'discard', onCommand: () => undefined };

  it('wrong password', async () => {
    const s = await server(['--requirepass', PASSWORD], PASSWORD);
    const e = expectDtsError(
      await failure(PsyncClient.connect(endpoint(s, { password: `${PASSWORD}-wrong` }), opts)),
      'AUTH_FAILED',
    );
    expect(e.message).toMatch(/wrong password/);
    const noPassword = expectDtsError(await failure(PsyncClient.connect(endpoint(s), opts)), 'AUTH_FAILED');
    expect(noPassword.message).toMatch(/NOAUTH/);
  });

  it('ACL user without PSYNC', async () => {
    const s = await server();
    await s.cli('ACL', 'SETUSER', 'reader', 'on', `>${PASSWORD}`, '~*', '&*', '+@all', '-psync');
    const e = expectDtsError(
      await failure(PsyncClient.connect(endpoint(s, { username: 'reader', password: PASSWORD }), opts)),
      'NO_PERMISSION',
    );
    expect(e.message).toMatch(/'reader' may not run 'PSYNC'/);
    expect(e.fix).toMatch(/ACL SETUSER reader \+psync \+replconf/);
  });

  it('PSYNC renamed away', async () => {
    const s = await server(['--rename-command', 'PSYNC', '']);
    const e = expectDtsError(
      await failure(PsyncClient.connect(endpoint(s), opts)),
      'REPLICATION_UNAVAILABLE',
    );
    expect(e.message).toMatch(/does not accept 'PSYNC'/);
    expect(e.fix).toMatch(/--sync-type full/);
    expect(e.fix).toMatch(/--source-psync-command NAME/);
  });

  it('a --source-psync-command name the source does not know', async () => {
    const s = await server(['--rename-command', 'PSYNC', '']);
    const ep = { ...endpoint(s), replicationCommands: { psync: 'psync-typo' } };
    const e = expectDtsError(await failure(PsyncClient.connect(ep, opts)), 'REPLICATION_UNAVAILABLE');
    expect(e.message).toMatch(/PSYNC \(sent as 'psync-typo'\): the source knows no command 'psync-typo'/);
    expect(e.fix).toMatch(/correct --source-psync-command/);
  });

  it('a PSYNC renamed with rename-command answers as SYNC, and the client says so', async () => {
    // Redis tells PSYNC from SYNC by the name sent: under another name it streams an RDB at once.
    const s = await server(['--rename-command', 'PSYNC', 'psync-oss-renamed']);
    const ep = { ...endpoint(s), replicationCommands: { psync: 'psync-oss-renamed' } };
    const e = expectDtsError(await failure(PsyncClient.connect(ep, opts)), 'RENAMED_PSYNC_IS_SYNC');
    expect(e.message).toMatch(/'psync-oss-renamed' answered like SYNC/);
    expect(e.fix).toMatch(/--sync-type full/);
  });

  it('a replica that lost its master', async () => {
    const nowhere = await freePort();
    const s = await server(['--replicaof', '127.0.0.1', String(nowhere)]);
    const e = expectDtsError(
      await failure(PsyncClient.connect(endpoint(s), opts)),
      'SOURCE_REPLICA_UNLINKED',
    );
    expect(e.message).toMatch(/NOMASTERLINK/);
  });

  it('nothing listening', async () => {
    const port = await freePort();
    const ep: RedisEndpoint = { role: 'source', host: '127.0.0.1', port };
    expectDtsError(await failure(PsyncClient.connect(ep, opts)), 'UNREACHABLE');
  });
});

describe('captureStart', () => {
  it('creates the backlog with PSYNC when there is none, then reads it from INFO', async () => {
    const s = await server();
    await s.cli('SET', 'before', '1');
    expect(await replicationInfo(s)).toMatch(/repl_backlog_active:0/);

    const viaPsync = await captureStart(endpoint(s));
    expect(viaPsync.via).toBe('psync');
    const info = await replicationInfo(s);
    expect(info).toMatch(/repl_backlog_active:1/);
    expect(viaPsync.replid).toBe(/master_replid:(\w+)/.exec(info)?.[1]);
    expect(viaPsync.offset).toBe(await masterOffset(s));

    // Writes after the capture are exactly what a continuing link receives.
    await s.cli('SET', 'after', '2');
    const viaInfo = await captureStart(endpoint(s));
    expect(viaInfo).toEqual({ replid: viaPsync.replid, offset: await masterOffset(s), via: 'info' });
    expect(viaInfo.offset).toBeGreaterThan(viaPsync.offset);

    const rec = await record(endpoint(s), { replid: viaPsync.replid, offset: viaPsync.offset });
    expect(rec.client.result.mode).toBe('continue');
    await waitFor(() => lastEnd(rec) >= viaInfo.offset, 'the captured writes');
    const captured = rec.commands.filter((c) => c.end <= viaInfo.offset);
    expect(withDb(captured)).toEqual(['0:SET after 2']);
    expect(captured.at(-1)!.end).toBe(viaInfo.offset);
  });

  it('uses INFO on a primary that already has a replica', async () => {
    const s = await server();
    const replica = await server(['--replicaof', '127.0.0.1', String(s.port)]);
    await waitFor(async () => /master_link_status:up/.test(await replicationInfo(replica)), 'the replica');
    await s.cli('SET', 'k', 'v');
    const start = await captureStart(endpoint(s));
    expect(start.via).toBe('info');
    expect(start.replid).toBe(/master_replid:(\w+)/.exec(await replicationInfo(s))?.[1]);
    expect(start.offset).toBe(await masterOffset(s));
  });
});

import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { inspect } from 'node:util';
import type { Redis } from 'ioredis';
import {
  afterAll,
  afterEach,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
  type MockInstance,
  vi,
} from 'vitest';
import { DtsError } from '../../lib/errors.ts';
import { classifyAdminError, connectAdmin, serverInfo } from '../../lib/redis/admin-client.ts';
import { parseRedisUrl } from '../../lib/redis/url.ts';
import { failure } from '../support/failure.ts';
import { freePort, type RedisProcess, startRedis } from '../support/redis-server.ts';
import { hasOpenssl, makeTestCertificates, tlsServerArgs } from '../support/tls.ts';

const PASSWORD = 'Adm1n-S3cret';
const READER_PASSWORD = 'R3ader-S3cret';
const SECRETS = [PASSWORD, READER_PASSWORD];

/** Asserts a DtsError whose every printable part, cause chain included, is free of passwords. */
function expectSafeDtsError(err: unknown, code: string): DtsError {
  expect(err).toBeInstanceOf(DtsError);
  const e = err as DtsError;
  expect(e.code).toBe(code);
  const printed = `${e.message}\n${e.fix}\n${inspect(e, { depth: 10 })}`;
  for (const secret of SECRETS) expect(printed).not.toContain(secret);
  return e;
}

// ioredis reports 'error' events nobody listens to on stderr; a failed connect must leave none.
let consoleError: MockInstance;
beforeEach(() => {
  consoleError = vi.spyOn(console, 'error');
});
afterEach(() => {
  const unhandled = consoleError.mock.calls.filter((args) => String(args[0]).includes('[ioredis]'));
  consoleError.mockRestore();
  expect(unhandled).toEqual([]);
});

describe('connectAdmin against real servers', () => {
  let open: RedisProcess;
  let secured: RedisProcess;
  const clients: Redis[] = [];

  beforeAll(async () => {
    [open, secured] = await Promise.all([
      startRedis(),
      startRedis({ args: ['--requirepass', PASSWORD], password: PASSWORD }),
    ]);
    await secured.cli('ACL', 'SETUSER', 'reader', 'on', `>${READER_PASSWORD}`, '~*', '+get');
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });
  afterAll(async () => {
    await Promise.all([open?.stop(), secured?.stop()]);
  });

  async function connect(...args: Parameters<typeof connectAdmin>): Promise<Redis> {
    const c = await connectAdmin(...args);
    clients.push(c);
    return c;
  }

  it('connects and parses INFO', async () => {
    await open.cli('FLUSHALL');
    await open.cli('SET', 'a', '1');
    await open.cli('SET', 'b', '2', 'EX', '1000');
    await open.cli('-n', '3', 'SET', 'c', '3');
    const c = await connect(parseRedisUrl(open.url, 'source'));
    expect(await c.ping()).toBe('PONG');
    const info = await serverInfo(c);
    const [major, minor, patch] = info.redisVersion.split('.').map(Number);
    expect(info.versionNum).toBe((major ?? 0) * 10000 + (minor ?? 0) * 100 + (patch ?? 0));
    expect(info.versionNum).toBeGreaterThan(0);
    expect(info.role).toBe('master');
    expect(info.clusterEnabled).toBe(false);
    expect(info.maxmemory).toBe(0);
    expect(info.usedMemory).toBeGreaterThan(0);
    expect(info.keyspace).toEqual({ 0: { keys: 2, expires: 1 }, 3: { keys: 1, expires: 0 } });
    expect(info.replication.replid).toMatch(/^[0-9a-f]{40}$/);
    expect(info.replication.offset).toBeGreaterThanOrEqual(0);
  });

  it('logs in with the password and selects the db', async () => {
    const c = await connect(parseRedisUrl(secured.url, 'target'), { db: 2 });
    await c.set('selected', 'yes');
    expect(await secured.cli('-n', '2', 'GET', 'selected')).toBe('yes');
  });

  it('logs in as an ACL user given as user:password', async () => {
    await secured.cli('SET', 'readable', 'v');
    // The user may not even PING: the login itself still succeeds.
    const c = await connect(
      parseRedisUrl(`redis://127.0.0.1:${secured.port}`, 'source', {
        password: `reader:${READER_PASSWORD}`,
      }),
    );
    expect(await c.get('readable')).toBe('v');
    expect(await c.call('ACL', 'WHOAMI').catch((e: Error) => e.message)).toMatch(/^NOPERM/);
  });

  it('reports a wrong password', async () => {
    const ep = parseRedisUrl(`redis://:wrong-${PASSWORD}@127.0.0.1:${secured.port}`, 'source');
    const e = expectSafeDtsError(await failure(connectAdmin(ep)), 'AUTH_FAILED');
    expect(e.message).toBe(`source 127.0.0.1:${secured.port}: wrong password (WRONGPASS)`);
    expect(inspect(e)).not.toContain(`wrong-${PASSWORD}`);
  });

  it('reports a wrong password for an ACL user', async () => {
    const ep = parseRedisUrl(`redis://reader:${PASSWORD}@127.0.0.1:${secured.port}`, 'target');
    const e = expectSafeDtsError(await failure(connectAdmin(ep)), 'AUTH_FAILED');
    expect(e.message).toContain("wrong password for user 'reader'");
  });

  it('reports a missing password', async () => {
    const ep = parseRedisUrl(`redis://127.0.0.1:${secured.port}`, 'source');
    const e = expectSafeDtsError(await failure(connectAdmin(ep)), 'AUTH_FAILED');
    expect(e.message).toBe(
      `source 127.0.0.1:${secured.port}: the server requires a password but none was given (NOAUTH)`,
    );
    expect(e.fix).toContain('password');
  });

  it('names the command an ACL user may not run, and the rule to add', async () => {
    const c = await connect(
      parseRedisUrl(`redis://reader:${READER_PASSWORD}@127.0.0.1:${secured.port}`, 'source'),
    );
    const e = expectSafeDtsError(await failure(serverInfo(c)), 'NO_PERMISSION');
    expect(e.message).toBe(
      `source 127.0.0.1:${secured.port}: INFO: ACL user 'reader' has no permission to run 'INFO' (NOPERM)`,
    );
    expect(e.fix).toContain('ACL SETUSER reader +info');
  });

  it('reports a db that does not exist', async () => {
    const e = expectSafeDtsError(
      await failure(connectAdmin(parseRedisUrl(secured.url, 'target'), { db: 99 })),
      'BAD_DB',
    );
    expect(e.message).toContain(`target 127.0.0.1:${secured.port}: the db number does not exist`);
  });

  it('reports a full target as TARGET_OOM', async () => {
    const c = await connect(parseRedisUrl(open.url, 'target'));
    await open.cli('CONFIG', 'SET', 'maxmemory', '1');
    try {
      const err = await failure(c.set('k', 'v'));
      const e = expectSafeDtsError(classifyAdminError(c, err, 'SET'), 'TARGET_OOM');
      expect(e.message).toBe(
        `target 127.0.0.1:${open.port}: SET: destination is out of memory (maxmemory reached) (OOM)`,
      );
      expect(e.fix).toContain('raise maxmemory');
    } finally {
      await open.cli('CONFIG', 'SET', 'maxmemory', '0');
    }
  });

  it('reports a replica target as READONLY and its role as replica', async () => {
    const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(open.port)] });
    try {
      const c = await connect(parseRedisUrl(replica.url, 'target'));
      expect((await serverInfo(c)).role).toBe('replica');
      const e = expectSafeDtsError(classifyAdminError(c, await failure(c.set('k', 'v')), 'SET'), 'READONLY');
      expect(e.fix).toContain('primary');
    } finally {
      await replica.stop();
    }
  });

  it('reports nothing listening as UNREACHABLE', async () => {
    const port = await freePort();
    const ep = parseRedisUrl(`redis://:${PASSWORD}@127.0.0.1:${port}`, 'source');
    const e = expectSafeDtsError(await failure(connectAdmin(ep)), 'UNREACHABLE');
    expect(e.message).toBe(
      `source 127.0.0.1:${port}: connection refused: nothing is listening there (ECONNREFUSED)`,
    );
    expect(e.fix).toBe('check host and port, and that redis-server is running');
  });
});

describe('connectAdmin against a server that accepts and never answers', () => {
  let server: Server;
  let port: number;
  const accepted: Socket[] = [];

  beforeAll(async () => {
    server = createServer((socket) => {
      accepted.push(socket);
      // Read and drop whatever arrives, so that the client's close is noticed here.
      socket.resume();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of accepted) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it('times out with TIMEOUT and closes its socket', async () => {
    const before = accepted.length;
    const ep = parseRedisUrl(`redis://:${PASSWORD}@127.0.0.1:${port}`, 'target');
    const e = expectSafeDtsError(await failure(connectAdmin(ep, { connectTimeoutMs: 300 })), 'TIMEOUT');
    expect(e.message).toBe(
      `target 127.0.0.1:${port}: the TCP connection opened but the server sent no reply within 300 ms`,
    );
    expect(accepted.length).toBe(before + 1);
    // The server side sees the client's socket end: connectAdmin left no connection behind.
    const socket = accepted[before] as Socket;
    if (!socket.closed) await new Promise((resolve) => socket.once('close', resolve));
    expect(socket.closed).toBe(true);
  });

  it('over TLS reports the stalled handshake as TLS_FAILED', async () => {
    const ep = parseRedisUrl(`rediss://:${PASSWORD}@127.0.0.1:${port}`, 'source');
    const e = expectSafeDtsError(await failure(connectAdmin(ep, { connectTimeoutMs: 300 })), 'TLS_FAILED');
    expect(e.message).toContain('TLS handshake got no answer within 300 ms');
    expect(e.fix).toContain('use rediss:// only when the server has TLS enabled');
  });
});

describe.skipIf(!hasOpenssl())('connectAdmin over TLS', () => {
  let dir: string;
  let server: RedisProcess;
  let tlsPort: number;

  beforeAll(async () => {
    const certs = makeTestCertificates();
    dir = certs.dir;
    tlsPort = await freePort();
    server = await startRedis({
      args: [...tlsServerArgs(certs, tlsPort), '--requirepass', PASSWORD],
      password: PASSWORD,
    });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects with the CA file', async () => {
    const ep = parseRedisUrl(`rediss://:${PASSWORD}@localhost:${tlsPort}`, 'source', {
      tlsCaFile: join(dir, 'ca.crt'),
    });
    const c = await connectAdmin(ep);
    try {
      expect(await c.ping()).toBe('PONG');
    } finally {
      c.disconnect();
    }
  });

  it('rejects an untrusted certificate', async () => {
    const ep = parseRedisUrl(`rediss://:${PASSWORD}@127.0.0.1:${tlsPort}`, 'target');
    const e = expectSafeDtsError(await failure(connectAdmin(ep)), 'TLS_FAILED');
    expect(e.message).toContain('TLS certificate is not trusted');
    expect(e.fix).toContain('--target-tls-ca FILE');
  });

  it('hints at rediss:// when a plain client reaches a TLS port', async () => {
    const ep = parseRedisUrl(`redis://:${PASSWORD}@127.0.0.1:${tlsPort}`, 'source');
    const e = expectSafeDtsError(
      await failure(connectAdmin(ep, { connectTimeoutMs: 1000 })),
      'CONNECTION_LOST',
    );
    expect(e.fix).toContain('use rediss:// instead of redis://');
  });

  it('reports rediss:// to a plain port as a TLS failure', async () => {
    const ep = parseRedisUrl(`rediss://:${PASSWORD}@127.0.0.1:${server.port}`, 'source');
    const e = expectSafeDtsError(await failure(connectAdmin(ep, { connectTimeoutMs: 1000 })), 'TLS_FAILED');
    expect(e.fix).toContain('use redis:// for a plain-text server');
  });
});

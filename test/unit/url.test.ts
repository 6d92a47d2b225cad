import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DtsError } from '../../lib/errors.ts';
import type { RedisEndpoint } from '../../lib/redis/endpoint.ts';
import { type ParseRedisUrlOptions, parseRedisUrl, passwordFromEnv, redactUrl } from '../../lib/redis/url.ts';

const SECRET = 's3cr3t-Pw';
const URL_FIX = 'use redis://[user:password@]host:port[/db] or rediss://… for TLS';

describe('parseRedisUrl accepts', () => {
  const cases: Array<[string, string, ParseRedisUrlOptions, Omit<RedisEndpoint, 'role'>]> = [
    ['host and port', 'redis://10.0.0.5:6380', {}, { host: '10.0.0.5', port: 6380 }],
    ['default port', 'redis://cache.internal', {}, { host: 'cache.internal', port: 6379 }],
    ['trailing slash', 'redis://h:1/', {}, { host: 'h', port: 1 }],
    ['db in the path', 'redis://h:6379/15', {}, { host: 'h', port: 6379, db: 15 }],
    ['db 0', 'redis://h/0', {}, { host: 'h', port: 6379, db: 0 }],
    ['default-user password', `redis://:${SECRET}@h:6379`, {}, { host: 'h', port: 6379, password: SECRET }],
    ['ACL user', 'redis://alice:pw@h:6379', {}, { host: 'h', port: 6379, username: 'alice', password: 'pw' }],
    [
      'percent-encoded user and password',
      'redis://al%40ce:p%3Aw%2F%25@h',
      {},
      { host: 'h', port: 6379, username: 'al@ce', password: 'p:w/%' },
    ],
    [
      'unencoded @ and / in the password',
      'redis://:p@ss/word@h:7000/2',
      {},
      { host: 'h', port: 7000, db: 2, password: 'p@ss/word' },
    ],
    [
      'userinfo password keeps later colons (no ACL split in URLs)',
      'redis://:a:b@h',
      {},
      { host: 'h', port: 6379, password: 'a:b' },
    ],
    ['IPv6 with port', 'redis://[::1]:6390', {}, { host: '::1', port: 6390 }],
    ['IPv6 default port', 'redis://[2001:db8::7]/3', {}, { host: '2001:db8::7', port: 6379, db: 3 }],
    ['bare host:port', 'localhost:6390', {}, { host: 'localhost', port: 6390 }],
    ['bare host', 'localhost', {}, { host: 'localhost', port: 6379 }],
    ['bare IPv6', '[::1]:7001', {}, { host: '::1', port: 7001 }],
    ['upper-case scheme and blanks around', '  REDIS://h:1\n', {}, { host: 'h', port: 1 }],
    [
      'rediss',
      'rediss://redis.example.com:6380',
      {},
      {
        host: 'redis.example.com',
        port: 6380,
        tls: { servername: 'redis.example.com' },
      },
    ],
    ['rediss to an IP has no servername', 'rediss://10.1.1.1', {}, { host: '10.1.1.1', port: 6379, tls: {} }],
    [
      'rediss insecure',
      'rediss://10.1.1.1',
      { tlsInsecure: true },
      {
        host: '10.1.1.1',
        port: 6379,
        tls: { insecure: true },
      },
    ],
    [
      'option password overrides the URL',
      'redis://:old@h',
      { password: 'new' },
      { host: 'h', port: 6379, password: 'new' },
    ],
    [
      'option user:password names an ACL user (split on the first colon)',
      'redis://h',
      { password: 'dts:pa:ss' },
      { host: 'h', port: 6379, username: 'dts', password: 'pa:ss' },
    ],
    [
      'option user:password replaces a URL password',
      'redis://:old@h',
      { password: 'dts:new' },
      { host: 'h', port: 6379, username: 'dts', password: 'new' },
    ],
    [
      'option password is literal when the URL names the user',
      'redis://alice:old@h',
      { password: 'x:y' },
      { host: 'h', port: 6379, username: 'alice', password: 'x:y' },
    ],
    [
      'option password fills a URL that names only the user',
      'redis://alice@h',
      { password: 'pw' },
      { host: 'h', port: 6379, username: 'alice', password: 'pw' },
    ],
    [
      'option :password means the default user',
      'redis://h',
      { password: ':pw' },
      { host: 'h', port: 6379, password: 'pw' },
    ],
    [
      'empty option password is ignored',
      'redis://:pw@h',
      { password: '' },
      { host: 'h', port: 6379, password: 'pw' },
    ],
  ];

  it.each(cases)('%s: %s', (_name, url, opts, want) => {
    expect(parseRedisUrl(url, 'source', opts)).toEqual({ role: 'source', ...want });
  });

  it('keeps the role it is given', () => {
    expect(parseRedisUrl('h:1', 'target').role).toBe('target');
  });
});

describe('parseRedisUrl rejects', () => {
  const cases: Array<[string, string, ParseRedisUrlOptions, string]> = [
    ['empty', '', {}, 'source URL is empty'],
    ['blank', '   ', {}, 'source URL is empty'],
    [
      'unknown scheme',
      `http://:${SECRET}@h:1`,
      {},
      "source URL 'http://:***@h:1' has an unknown scheme 'http://'",
    ],
    ['no scheme name', '://h:1', {}, "source URL '://h:1' has no valid scheme"],
    ['missing host', `redis://:${SECRET}@:6379`, {}, "source URL 'redis://:***@:6379' has no host"],
    ['nothing after the scheme', 'redis://', {}, "source URL 'redis://' has no host"],
    ['password without @', `redis://:${SECRET}`, {}, "source URL 'redis://:***' has no host"],
    [
      'user:password without @host',
      `redis://alice:${SECRET}`,
      {},
      "source URL 'redis://alice:***' has a port that is not a number",
    ],
    [
      'port out of range',
      `redis://:${SECRET}@h:99999`,
      {},
      "source URL 'redis://:***@h:99999' has an invalid port 99999 (must be 1..65535)",
    ],
    ['port 0', 'redis://h:0', {}, "source URL 'redis://h:0' has an invalid port 0 (must be 1..65535)"],
    [
      'port not a number',
      `redis://:${SECRET}@h:abc`,
      {},
      "source URL 'redis://:***@h:abc' has a port that is not a number",
    ],
    ['empty port', 'redis://h:', {}, "source URL 'redis://h:' has an empty port"],
    [
      'db not a number',
      `redis://:${SECRET}@h:1/x`,
      {},
      "source URL 'redis://:***@h:1/x' has an invalid db 'x' (the path must be a database number such as /0)",
    ],
    [
      'negative db',
      'redis://h:1/-1',
      {},
      "source URL 'redis://h:1/-1' has an invalid db '-1' (the path must be a database number such as /0)",
    ],
    [
      'nested path',
      'redis://h:1/0/1',
      {},
      "source URL 'redis://h:1/0/1' has an invalid db '0/1' (the path must be a database number such as /0)",
    ],
    [
      'query string',
      `redis://h:1/0?password=${SECRET}`,
      {},
      "source URL 'redis://h:1/0?password=***' has query parameters or a fragment, which are not supported",
    ],
    ['garbage host', 'redis://h$st:1', {}, "source URL 'redis://h$st:1' has an invalid host 'h$st'"],
    ['spaces', 'not a url', {}, "source URL 'not a url' has an invalid host 'not a url'"],
    [
      'unbracketed IPv6',
      'redis://::1:6379',
      {},
      "source URL 'redis://:***' has an IPv6 address without brackets",
    ],
    [
      'unclosed IPv6',
      'redis://[::1:6379',
      {},
      "source URL 'redis://[::1:6379' has an IPv6 address without its closing bracket",
    ],
    [
      'bad IPv6',
      'redis://[zz::1]:1',
      {},
      "source URL 'redis://[zz::1]:1' has an invalid IPv6 address 'zz::1'",
    ],
    [
      'text after IPv6',
      'redis://[::1]x',
      {},
      "source URL 'redis://[::1]x' has unexpected text 'x' after the IPv6 address",
    ],
    [
      'malformed percent escape',
      `redis://:${SECRET}%zz@h`,
      {},
      "source URL 'redis://:***@h' has a malformed percent-escape in its user or password",
    ],
    // A lone word before '@' may be the password: it must not be echoed as a "user name".
    [
      'user without password',
      `redis://${SECRET}@h`,
      {},
      "source URL 'redis://***@h' names a user but gives no password",
    ],
    [
      'TLS options with redis://',
      `redis://:${SECRET}@h`,
      { tlsInsecure: true },
      "source URL 'redis://:***@h' is not a TLS URL, but TLS options were given",
    ],
  ];

  it.each(cases)('%s: %s', (_name, url, opts, message) => {
    const err = catchError(() => parseRedisUrl(url, 'source', opts));
    expect(err.code).toBe('BAD_URL');
    expect(err.message).toBe(message);
    expect(err.fix).toBeTruthy();
    expect(err.message).not.toContain(SECRET);
    expect(err.fix).not.toContain(SECRET);
  });

  it('gives the URL form as the fix for syntax errors', () => {
    expect(catchError(() => parseRedisUrl('redis://h:99999', 'target')).fix).toBe(URL_FIX);
    expect(catchError(() => parseRedisUrl('redis://h:99999', 'target')).message).toMatch(/^target URL /);
  });
});

describe('TLS CA file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'redis-dts-url-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

  it('is read into tls.ca', () => {
    const file = join(dir, 'ca.pem');
    writeFileSync(file, pem);
    const ep = parseRedisUrl('rediss://db.example:6380', 'target', { tlsCaFile: file });
    expect(ep.tls).toEqual({ ca: pem, servername: 'db.example' });
  });

  it('fails clearly when unreadable', () => {
    const file = join(dir, 'missing.pem');
    const err = catchError(() => parseRedisUrl('rediss://h', 'target', { tlsCaFile: file }));
    expect(err.code).toBe('BAD_TLS_CA');
    expect(err.message).toBe(`target TLS CA file '${file}' cannot be read (ENOENT)`);
  });

  it('fails clearly when not PEM', () => {
    const file = join(dir, 'junk.pem');
    writeFileSync(file, 'not a certificate');
    const err = catchError(() => parseRedisUrl('rediss://h', 'source', { tlsCaFile: file }));
    expect(err.code).toBe('BAD_TLS_CA');
    expect(err.message).toBe(`source TLS CA file '${file}' holds no PEM certificate`);
  });

  it('is refused with redis://', () => {
    const file = join(dir, 'ca2.pem');
    writeFileSync(file, pem);
    expect(catchError(() => parseRedisUrl('redis://h', 'source', { tlsCaFile: file })).code).toBe('BAD_URL');
  });
});

describe('redactUrl', () => {
  it.each([
    [`redis://:${SECRET}@h:1`, 'redis://:***@h:1'],
    [`redis://alice:${SECRET}@h:1/0`, 'redis://alice:***@h:1/0'],
    [`rediss://alice:p@${SECRET}@[::1]:1`, 'rediss://alice:***@[::1]:1'],
    [`${SECRET}@h:1`, '***@h:1'],
    ['redis://h:1/0', 'redis://h:1/0'],
    [`redis://h:1?password=${SECRET}&x=1`, 'redis://h:1?password=***&x=1'],
    [`redis://alice:${SECRET}/0`, 'redis://alice:***/0'],
    ['h:6379', 'h:6379'],
    ['', ''],
  ])('%s → %s', (url, want) => {
    expect(redactUrl(url)).toBe(want);
  });
});

describe('passwordFromEnv', () => {
  const VAR = 'REDIS_DTS_URL_TEST_PASSWORD';
  afterEach(() => {
    delete process.env[VAR];
  });

  it('returns the value, which parseRedisUrl splits as user:password', () => {
    process.env[VAR] = 'dts:pa:ss';
    const value = passwordFromEnv(VAR, 'source');
    expect(value).toBe('dts:pa:ss');
    expect(parseRedisUrl('redis://h', 'source', { password: value })).toMatchObject({
      username: 'dts',
      password: 'pa:ss',
    });
  });

  it('fails when unset', () => {
    const err = catchError(() => passwordFromEnv(VAR, 'target'));
    expect(err.code).toBe('MISSING_PASSWORD');
    expect(err.message).toBe(`target password variable ${VAR} is not set`);
    expect(err.fix).toContain(`export ${VAR}=`);
  });

  it('fails when empty', () => {
    process.env[VAR] = '';
    const err = catchError(() => passwordFromEnv(VAR, 'source'));
    expect(err.code).toBe('MISSING_PASSWORD');
    expect(err.message).toBe(`source password variable ${VAR} is empty`);
  });
});

function catchError(fn: () => unknown): DtsError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DtsError) return e;
    throw e;
  }
  throw new Error('expected a DtsError');
}

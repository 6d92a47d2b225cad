import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { DtsError } from '../errors.ts';
import type { RedisEndpoint, RedisTls } from './endpoint.ts';

type Role = RedisEndpoint['role'];

export interface ParseRedisUrlOptions {
  /**
   * Overrides the URL's password. When the URL names no user, `user:password` here means an ACL user
   * (split on the first colon), the form Alibaba Cloud DTS accepts; when the URL names a user, the value is
   * the literal password. A default-user password containing a colon is written `default:pa:ss`.
   */
  password?: string;
  /** PEM file of the CA to trust. */
  tlsCaFile?: string;
  /** Accept any server certificate (testing only). */
  tlsInsecure?: boolean;
}

const URL_FORM_FIX = 'use redis://[user:password@]host:port[/db] or rediss://… for TLS';
const DEFAULT_PORT = 6379;
const MAX_DB = 2 ** 31 - 1;

/**
 * Parses `redis://[user:password@]host[:port][/db]`, `rediss://…` (TLS) or a bare `host[:port]`.
 *
 * TLS options (tlsCaFile, tlsInsecure) are only accepted with rediss://: they do not silently upgrade a
 * redis:// URL, because a URL that says plain text while a flag says TLS is more likely a mistake
 * (a flag left over from another setup) than an intent, and the fix is one letter.
 */
export function parseRedisUrl(url: string, role: Role, opts: ParseRedisUrlOptions = {}): RedisEndpoint {
  const text = url.trim();
  const bad = (what: string, fix = URL_FORM_FIX) =>
    new DtsError('BAD_URL', `${role} URL '${redactUrl(text)}' ${what}`, fix);

  if (text === '') throw new DtsError('BAD_URL', `${role} URL is empty`, URL_FORM_FIX);

  let scheme = 'redis';
  let rest = text;
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text);
  if (schemeMatch) {
    scheme = (schemeMatch[1] ?? '').toLowerCase();
    rest = text.slice(schemeMatch[0].length);
    if (scheme !== 'redis' && scheme !== 'rediss') throw bad(`has an unknown scheme '${scheme}://'`);
  } else if (text.includes('://')) {
    throw bad('has no valid scheme');
  }
  const tls = scheme === 'rediss';

  // The last '@' ends the userinfo: the host part never contains one, and a password may hold an
  // unencoded '@', '/' or ':' that would otherwise be misread as the end of the authority.
  const at = rest.lastIndexOf('@');
  const userinfo = at >= 0 ? rest.slice(0, at) : undefined;
  const afterUserinfo = at >= 0 ? rest.slice(at + 1) : rest;

  const pathStart = afterUserinfo.search(/[/?#]/);
  const hostPort = pathStart >= 0 ? afterUserinfo.slice(0, pathStart) : afterUserinfo;
  const tail = pathStart >= 0 ? afterUserinfo.slice(pathStart) : '';

  const { host, portText } = splitHostPort(hostPort, bad);
  const port = parsePort(portText, bad);
  const db = parseDb(tail, bad);

  let username: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    const rawUser = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
    const rawPassword = colon >= 0 ? userinfo.slice(colon + 1) : undefined;
    username = decodeUserinfo(rawUser, bad) || undefined;
    password = rawPassword === undefined ? undefined : decodeUserinfo(rawPassword, bad) || undefined;
  }

  if (opts.password) {
    const colon = opts.password.indexOf(':');
    if (username === undefined && colon >= 0) {
      username = opts.password.slice(0, colon) || undefined;
      password = opts.password.slice(colon + 1);
    } else {
      password = opts.password;
    }
  }

  if (username !== undefined && !password) {
    // The lone word before '@' may well be a password the user meant as such: never quote it.
    throw bad(
      'names a user but gives no password',
      'write redis://user:password@host:port, or redis://:password@host:port for the default user',
    );
  }

  if (!tls && (opts.tlsCaFile || opts.tlsInsecure)) {
    throw bad(
      'is not a TLS URL, but TLS options were given',
      `use rediss://… to connect with TLS, or drop the ${role} TLS options`,
    );
  }

  const ep: RedisEndpoint = { role, host, port };
  if (db !== undefined) ep.db = db;
  if (username !== undefined) ep.username = username;
  if (password) ep.password = password;
  if (tls) ep.tls = tlsOptions(host, role, opts);
  return ep;
}

function splitHostPort(
  hostPort: string,
  bad: (what: string, fix?: string) => DtsError,
): { host: string; portText: string | undefined } {
  if (hostPort === '') throw bad('has no host');
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0) throw bad('has an IPv6 address without its closing bracket');
    const host = safeDecode(hostPort.slice(1, close)) ?? '';
    if (!/^[0-9A-Fa-f:.]+(%[\w.-]+)?$/.test(host) || isIP(host.replace(/%.*$/, '')) !== 6) {
      throw bad(`has an invalid IPv6 address '${host}'`);
    }
    const after = hostPort.slice(close + 1);
    if (after !== '' && !after.startsWith(':'))
      throw bad(`has unexpected text '${after}' after the IPv6 address`);
    return { host, portText: after === '' ? undefined : after.slice(1) };
  }
  const colons = hostPort.split(':').length - 1;
  if (colons > 1) {
    throw bad('has an IPv6 address without brackets', 'write IPv6 hosts in brackets: redis://[::1]:6379');
  }
  const [host = '', portText] = hostPort.split(':');
  if (host === '') throw bad('has no host');
  if (!/^[A-Za-z0-9._-]+$/.test(host)) throw bad(`has an invalid host '${host}'`);
  return { host, portText };
}

function parsePort(portText: string | undefined, bad: (what: string) => DtsError): number {
  if (portText === undefined) return DEFAULT_PORT;
  if (portText === '') throw bad('has an empty port');
  // Not quoted: a non-numeric "port" is often a password typed without its '@host'.
  if (!/^\d+$/.test(portText)) throw bad('has a port that is not a number');
  const port = Number(portText);
  if (port < 1 || port > 65535) throw bad(`has an invalid port ${portText} (must be 1..65535)`);
  return port;
}

function parseDb(tail: string, bad: (what: string, fix?: string) => DtsError): number | undefined {
  if (tail.startsWith('?') || tail.startsWith('#') || /[?#]/.test(tail)) {
    throw bad('has query parameters or a fragment, which are not supported', URL_FORM_FIX);
  }
  if (tail === '' || tail === '/') return undefined;
  const dbText = tail.slice(1);
  if (!/^\d+$/.test(dbText) || Number(dbText) > MAX_DB) {
    throw bad(`has an invalid db '${dbText}' (the path must be a database number such as /0)`);
  }
  return Number(dbText);
}

function decodeUserinfo(raw: string, bad: (what: string, fix?: string) => DtsError): string {
  const decoded = safeDecode(raw);
  if (decoded === undefined) {
    throw bad(
      'has a malformed percent-escape in its user or password',
      'percent-encode special characters in the password (% as %25), or pass the password separately',
    );
  }
  return decoded;
}

function safeDecode(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

function tlsOptions(host: string, role: Role, opts: ParseRedisUrlOptions): RedisTls {
  const tls: RedisTls = {};
  // SNI must be a DNS name: Node refuses (and warns about) an IP address as servername.
  if (isIP(host) === 0) tls.servername = host;
  if (opts.tlsInsecure) tls.insecure = true;
  if (opts.tlsCaFile) tls.ca = readCaFile(opts.tlsCaFile, role);
  return tls;
}

function readCaFile(file: string, role: Role): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new DtsError(
      'BAD_TLS_CA',
      `${role} TLS CA file '${file}' cannot be read (${code})`,
      'pass the path of a readable PEM file with the CA certificate that signed the server certificate',
    );
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new DtsError(
      'BAD_TLS_CA',
      `${role} TLS CA file '${file}' holds no PEM certificate`,
      "pass a PEM file (text starting with '-----BEGIN CERTIFICATE-----')",
    );
  }
  return pem;
}

/**
 * The URL with its password (or a lone userinfo word, which may be one) replaced by ***; safe for logs.
 * Never throws: it is applied to arbitrary user input, valid or not.
 */
export function redactUrl(url: string): string {
  let out = url;
  const schemeEnd = out.indexOf('://');
  const start = schemeEnd >= 0 ? schemeEnd + 3 : 0;
  const at = out.lastIndexOf('@');
  if (at >= start) {
    const userinfo = out.slice(start, at);
    const colon = userinfo.indexOf(':');
    const masked = colon >= 0 ? `${userinfo.slice(0, colon)}:***` : '***';
    out = out.slice(0, start) + masked + out.slice(at);
  } else {
    // Without '@', text after the host's colon that is not a port is likely a password whose '@host'
    // was forgotten (redis://user:pw): mask it too.
    const end = out.slice(start).search(/[/?#]/);
    const authority = end >= 0 ? out.slice(start, start + end) : out.slice(start);
    const colon = authority.indexOf(':');
    if (!authority.startsWith('[') && colon >= 0 && !/^\d*$/.test(authority.slice(colon + 1))) {
      out = `${out.slice(0, start + colon)}:***${out.slice(start + authority.length)}`;
    }
  }
  return out.replace(/([?&](?:password|pass|pwd|auth)=)[^&#]*/gi, '$1***');
}

/** The password in environment variable `varName`; `user:password` there names an ACL user. */
export function passwordFromEnv(varName: string, role: Role): string {
  const value = process.env[varName];
  if (value === undefined || value === '') {
    throw new DtsError(
      'MISSING_PASSWORD',
      `${role} password variable ${varName} is ${value === undefined ? 'not set' : 'empty'}`,
      `export ${varName}=<password> (or user:password for an ACL user) before running`,
    );
  }
  return value;
}

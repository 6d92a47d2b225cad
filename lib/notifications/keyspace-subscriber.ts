import type net from 'node:net';
import { DtsError } from '../errors.ts';
import { classifyRedisError } from '../redis/classify-error.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import { openSocket } from '../redis/open-socket.ts';
import { type CommandArg, encodeCommand, RespError, RespParser, type RespValue } from '../redis/resp.ts';

/** One keyspace event: the db and key of `__keyspace@<db>__:<key>`, and the event name (set, del, …). */
export interface KeyspaceEvent {
  db: number;
  /** A view into the socket's bytes: copy it to keep it. */
  key: Buffer;
  event: Buffer;
}

export interface KeyspaceSubscriberOptions {
  /** Selected source dbs; absent: every db (`__keyspace@*__:*`). */
  dbs?: readonly number[];
  onEvent: (e: KeyspaceEvent) => void;
  /** The connection ended without close(): events from now until a new subscription are lost. */
  onLost: (cause: Error) => void;
  connectTimeoutMs?: number;
}

const PMESSAGE = Buffer.from('pmessage');
const PREFIX = Buffer.from('__keyspace@');
const SEPARATOR = Buffer.from('__:');

/** The PSUBSCRIBE patterns of the selected dbs. */
export function keyspacePatterns(dbs: readonly number[] | undefined): string[] {
  return dbs ? dbs.map((db) => `__keyspace@${db}__:*`) : ['__keyspace@*__:*'];
}

/**
 * A keyspace-event subscription on one source node, on its own socket (RESP2 pub/sub: once subscribed,
 * the connection only receives pushes). Resolves `open` once every pattern is confirmed, so events of
 * writes made after it are delivered. Pub/sub is at most once: when the server closes the connection
 * (a client-output-buffer kill, CLIENT KILL, a failover) or the network drops it, onLost is called once
 * and the caller treats the time until a new subscription as a gap.
 */
export class KeyspaceSubscriber {
  readonly endpoint: RedisEndpoint;
  private readonly socket: net.Socket;
  private closing = false;
  private lost = false;

  private constructor(endpoint: RedisEndpoint, socket: net.Socket) {
    this.endpoint = endpoint;
    this.socket = socket;
  }

  static async open(endpoint: RedisEndpoint, o: KeyspaceSubscriberOptions): Promise<KeyspaceSubscriber> {
    const socket = await openSocket(endpoint, o.connectTimeoutMs ?? 5000);
    socket.setNoDelay(true);
    const sub = new KeyspaceSubscriber(endpoint, socket);
    const patterns = keyspacePatterns(o.dbs);
    const hello: CommandArg[][] = [];
    if (endpoint.password !== undefined) {
      hello.push(
        endpoint.username ? ['AUTH', endpoint.username, endpoint.password] : ['AUTH', endpoint.password],
      );
    }
    hello.push(['CLIENT', 'SETNAME', 'redis-dts-keyspace']);
    // Replies before the subscription: AUTH, CLIENT SETNAME (may be refused on a managed service), then
    // one confirmation per pattern.
    let replies = 0;
    const confirmations = hello.length + patterns.length;
    let settle!: { resolve: () => void; reject: (e: Error) => void };
    const ready = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
    const parser = new RespParser((v) => {
      if (replies < confirmations) {
        const index = replies++;
        if (v instanceof RespError && index < hello.length && hello[index]![0] !== 'CLIENT') {
          settle.reject(classifyRedisError(v, endpoint, 'connecting'));
          return;
        }
        if (v instanceof RespError && index >= hello.length) {
          settle.reject(
            new DtsError(
              'SUBSCRIBE_REFUSED',
              `${describeEndpoint(endpoint)} refused PSUBSCRIBE ${patterns[index - hello.length]}: ${v.message}`,
              'allow the source user to subscribe to keyspace channels (ACL: +psubscribe &__keyspace@*)',
            ),
          );
          return;
        }
        if (replies === confirmations) settle.resolve();
        return;
      }
      sub.dispatch(v, o.onEvent);
    });
    socket.on('data', (d: Buffer) => {
      try {
        parser.feed(d);
      } catch (e) {
        socket.destroy(e as Error);
      }
    });
    const fail = (e: Error) => {
      if (sub.closing || sub.lost) return;
      sub.lost = true;
      settle.reject(e);
      o.onLost(e);
    };
    socket.on('error', (e) => fail(classifyRedisError(e, endpoint)));
    socket.on('close', () =>
      fail(
        classifyRedisError(
          Object.assign(new Error('subscription closed by the server'), { code: 'ECONNRESET' }),
          endpoint,
        ),
      ),
    );
    socket.write(Buffer.concat([...hello, ['PSUBSCRIBE', ...patterns]].map(encodeCommand)));
    try {
      await ready;
    } catch (e) {
      sub.closing = true;
      socket.destroy();
      throw e;
    }
    return sub;
  }

  private dispatch(v: RespValue, onEvent: (e: KeyspaceEvent) => void): void {
    if (!Array.isArray(v) || v.length !== 4) return;
    const [kind, , channel, message] = v;
    if (!Buffer.isBuffer(kind) || !kind.equals(PMESSAGE)) return;
    if (!Buffer.isBuffer(channel) || !Buffer.isBuffer(message)) return;
    const parsed = parseKeyspaceChannel(channel);
    if (!parsed) return;
    onEvent({ db: parsed.db, key: parsed.key, event: message });
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }
}

/** `__keyspace@<db>__:<key>` → its db and key (a view), or undefined for any other channel. */
export function parseKeyspaceChannel(channel: Buffer): { db: number; key: Buffer } | undefined {
  if (channel.length < PREFIX.length + SEPARATOR.length + 1) return undefined;
  if (channel.compare(PREFIX, 0, PREFIX.length, 0, PREFIX.length) !== 0) return undefined;
  let db = 0;
  let at = PREFIX.length;
  for (; at < channel.length; at++) {
    const c = channel[at]!;
    if (c < 48 || c > 57) break;
    db = db * 10 + (c - 48);
  }
  if (at === PREFIX.length) return undefined;
  if (channel.compare(SEPARATOR, 0, SEPARATOR.length, at, at + SEPARATOR.length) !== 0) return undefined;
  return { db, key: channel.subarray(at + SEPARATOR.length) };
}

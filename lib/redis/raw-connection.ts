import type net from 'node:net';
import { DtsError } from '../errors.ts';
import { classifyRedisError } from './classify-error.ts';
import { describeEndpoint, type RedisEndpoint } from './endpoint.ts';
import { openSocket } from './open-socket.ts';
import { type CommandArg, encodeCommand, RespError, RespParser, type RespValue } from './resp.ts';

/** Receives the replies of one pipelined write, in order. */
export interface ReplySink {
  onReply(value: RespValue, index: number): void;
  /** Called after the last reply of the write. */
  onDone?(): void;
  /** Called once if the connection fails before every reply arrived. */
  onFail?(err: Error): void;
}

interface Pending {
  sink: ReplySink;
  count: number;
  received: number;
}

export interface RawConnectionOptions {
  db?: number;
  connectTimeoutMs?: number;
  /** CLIENT SETNAME, so operators can see redis-dts in CLIENT LIST. */
  clientName?: string;
}

/**
 * A pipelined Redis connection for the data plane: the caller writes pre-encoded commands and gets
 * the replies through a sink, with no promise or object per command. ioredis (lib/redis/admin-client.ts)
 * serves the control plane; this class exists because per-command promises cost more CPU than Redis
 * itself spends on DUMP/RESTORE.
 */
export class RawConnection {
  readonly endpoint: RedisEndpoint;
  private readonly socket: net.Socket;
  private readonly parser: RespParser;
  private queue: (Pending | undefined)[] = [];
  private head = 0;
  private failure: Error | undefined;
  private closing = false;
  private readonly closeListeners: ((err: Error | undefined) => void)[] = [];

  private constructor(endpoint: RedisEndpoint, socket: net.Socket) {
    this.endpoint = endpoint;
    this.socket = socket;
    this.parser = new RespParser((v) => this.dispatch(v));
    socket.on('data', (d: Buffer) => {
      try {
        this.parser.feed(d);
      } catch (e) {
        this.fail(e as Error);
      }
    });
    socket.on('error', (e) => this.fail(classifyRedisError(e, endpoint)));
    socket.on('close', () =>
      this.fail(
        this.closing
          ? new Error('connection closed')
          : classifyRedisError(
              Object.assign(new Error('connection closed by the server'), { code: 'ECONNRESET' }),
              endpoint,
            ),
      ),
    );
  }

  static async open(endpoint: RedisEndpoint, options: RawConnectionOptions = {}): Promise<RawConnection> {
    const timeoutMs = options.connectTimeoutMs ?? 5000;
    const socket = await openSocket(endpoint, timeoutMs);
    socket.setNoDelay(true);
    const conn = new RawConnection(endpoint, socket);
    try {
      const hello: CommandArg[][] = [];
      if (endpoint.password !== undefined) {
        hello.push(
          endpoint.username ? ['AUTH', endpoint.username, endpoint.password] : ['AUTH', endpoint.password],
        );
      }
      if (options.clientName) hello.push(['CLIENT', 'SETNAME', options.clientName]);
      if (options.db !== undefined && options.db !== 0) hello.push(['SELECT', options.db]);
      hello.push(['PING']);
      const timer = setTimeout(
        () =>
          conn.fail(classifyRedisError(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' }), endpoint)),
        timeoutMs,
      );
      try {
        for (const cmd of hello) {
          // CLIENT SETNAME may be renamed or forbidden on managed services: not worth failing for.
          const optional = cmd[0] === 'CLIENT';
          await conn.call(cmd).catch((e: unknown) => {
            if (!optional) throw e;
          });
        }
      } finally {
        clearTimeout(timer);
      }
    } catch (e) {
      conn.destroy();
      throw classifyRedisError(e, endpoint, 'connecting');
    }
    return conn;
  }

  get failed(): Error | undefined {
    return this.failure;
  }

  /** Replies not yet received. */
  get pendingReplies(): number {
    let n = 0;
    for (let i = this.head; i < this.queue.length; i++) n += this.queue[i]!.count - this.queue[i]!.received;
    return n;
  }

  /** The next 'drain' of the socket, while its buffer is full. */
  private drained: Promise<void> | undefined;

  /**
   * Writes `count` already-encoded commands. Resolves when the socket accepted the bytes (after 'drain'
   * when its buffer is full), which is the back-pressure point for callers that produce faster than the
   * server answers.
   */
  write(buf: Buffer, count: number, sink: ReplySink): Promise<void> | undefined {
    if (this.failure) {
      sink.onFail?.(this.failure);
      return undefined;
    }
    this.queue.push({ sink, count, received: 0 });
    if (this.socket.write(buf)) return undefined;
    // One listener however many writers wait: pipelines write on while the buffer is full.
    this.drained ??= new Promise((resolve) =>
      this.socket.once('drain', () => {
        this.drained = undefined;
        resolve();
      }),
    );
    return this.drained;
  }

  /** One command, its reply as a promise; error replies reject with RespError. Not for hot paths. */
  call(args: readonly CommandArg[]): Promise<RespValue> {
    return new Promise((resolve, reject) => {
      let reply: RespValue = null;
      this.write(encodeCommand(args), 1, {
        onReply: (v) => {
          reply = v;
        },
        onDone: () => (reply instanceof RespError ? reject(reply) : resolve(reply)),
        onFail: reject,
      });
    });
  }

  /** Several commands in one write; resolves with every reply (errors as RespError values). */
  pipeline(commands: readonly (readonly CommandArg[])[]): Promise<RespValue[]> {
    return new Promise((resolve, reject) => {
      const replies: RespValue[] = [];
      this.write(Buffer.concat(commands.map(encodeCommand)), commands.length, {
        onReply: (v) => {
          replies.push(v);
        },
        onDone: () => resolve(replies),
        onFail: reject,
      });
    });
  }

  onClose(listener: (err: Error | undefined) => void): void {
    this.closeListeners.push(listener);
  }

  /** Waits for every pending reply, then closes with QUIT semantics (no data lost in flight). */
  async close(): Promise<void> {
    if (this.failure) return;
    if (this.pendingReplies > 0) await this.call(['PING']).catch(() => undefined);
    this.closing = true;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }

  destroy(): void {
    this.closing = true;
    this.socket.destroy();
  }

  private dispatch(value: RespValue): void {
    const p = this.queue[this.head];
    if (!p) {
      this.fail(
        new DtsError(
          'PROTOCOL',
          `${describeEndpoint(this.endpoint)} sent an unexpected reply`,
          'report a bug',
        ),
      );
      return;
    }
    p.sink.onReply(value, p.received);
    if (++p.received === p.count) {
      // Drop the finished sink now: it holds the whole chunk in its closure until then.
      this.queue[this.head++] = undefined;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      p.sink.onDone?.();
    }
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.socket.destroy();
    const pending = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    for (const p of pending) p?.sink.onFail?.(err);
    for (const l of this.closeListeners) l(this.closing ? undefined : err);
  }
}

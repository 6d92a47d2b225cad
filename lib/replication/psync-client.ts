import type net from 'node:net';
import { DtsError } from '../errors.ts';
import { classifyRedisError } from '../redis/classify-error.ts';
import { type RedisEndpoint, replicationCommand } from '../redis/endpoint.ts';
import { openSocket } from '../redis/open-socket.ts';
import { type CommandArg, encodeCommand, encodeCommands } from '../redis/resp.ts';
import { CommandStreamParser } from './command-stream-parser.ts';
import {
  classifyReplicationReply,
  type ReplicationPhase,
  renamedPsyncActsAsSync,
  replicationLinkLost,
  replicationProtocolError,
  replicationTimeout,
} from './psync-errors.ts';
import { RdbPayloadReader, type RdbSink } from './rdb-payload-reader.ts';

export interface PsyncResult {
  /** 'continue': the master resumes from its backlog; 'fullresync': an RDB comes first (backlog lost). */
  mode: 'fullresync' | 'continue';
  /** The master's replication id now (after a failover it differs from the one asked for). */
  replid: string;
  /** Offset of the last byte before the stream: the first command's bytes start at startOffset + 1. */
  startOffset: number;
}

export interface RdbInfo {
  /** Payload bytes (the diskless end mark excluded). */
  bytes: number;
  /** True for the `$EOF:` framing (repl-diskless-sync yes). */
  diskless: boolean;
}

export interface PsyncOptions {
  /** With `offset`: continue this replication history. Without: `PSYNC ? -1` (always a full resync). */
  replid?: string;
  /** The last offset already processed; PSYNC asks for the stream from offset + 1. */
  offset?: number;
  /**
   * Sent as `REPLCONF listening-port` (default 0). The master shows it in INFO replication (and Sentinel
   * reads it there); we run no server, so 0 says so.
   */
  listeningPort?: number;
  /** Deadline for TCP/TLS connect plus the AUTH/REPLCONF replies (default 5000). */
  connectTimeoutMs?: number;
  /**
   * The link is considered dead when nothing arrives for this long while not paused (default 60000, as
   * Redis' repl-timeout; the master sends PING every repl-ping-replica-period, 10 s by default, and
   * newlines while it prepares the RDB).
   */
  readTimeoutMs?: number;
  /**
   * How often `REPLCONF ACK` goes out on its own (default 1000, like a Redis replica). It also bounds how
   * long a diskless master may hold the stream back after the RDB: it counts the ACK that puts a replica
   * online only once it has reaped its RDB child, which can be after our first ACK arrived.
   */
  ackIntervalMs?: number;
  /** What to do with the RDB of a full resync: drop it, or receive it piece by piece. */
  rdb: 'discard' | RdbSink;
  /** After the last RDB byte, before the first command. */
  onRdbEnd?: (info: RdbInfo) => void;
  /**
   * Every command of the stream, PING and `REPLCONF GETACK` included (they advance the offset; consumers
   * ignore them). `endOffset` is the offset of the command's last byte (see CommandStreamParser). The
   * argv Buffers are views of socket chunks: copy what you keep.
   */
  onCommand: (argv: Buffer[], endOffset: number) => void;
  /**
   * Once, when the link ends after connect() resolved: `undefined` after close(), else the reason (a
   * DtsError for link, protocol and timeout failures; whatever a callback threw otherwise). Reconnect
   * with `{ replid, offset: <applied offset> }`.
   */
  onClose?: (err: Error | undefined) => void;
}

type Phase = 'handshake' | 'psync' | 'rdb-header' | 'rdb' | 'stream' | 'closed';

/** A line longer than this before the stream starts means we are not talking to a Redis master. */
const MAX_LINE = 64 * 1024;

const NEWLINE = Buffer.from('\n');

/**
 * One replication link to a master, acting as a replica without a dataset: handshake, `PSYNC`, the RDB
 * (drained as a stream), then the command stream with exact offsets.
 *
 * Usage: `const c = await PsyncClient.connect(ep, { replid, offset, rdb, onCommand, onClose })` resolves
 * as soon as the PSYNC reply is known (`c.result`); the RDB and the commands then flow through the
 * callbacks, starting on a later event-loop turn, so the caller holds `c` before the first callback.
 *
 * Acknowledgements: `REPLCONF ACK <offset>` goes out right after the RDB (a diskless master waits for it
 * before streaming), on every `REPLCONF GETACK`, and every `ackIntervalMs`. The offset is the received
 * offset (end of the last complete command) until the consumer calls `ack(offset)`; from then on, the
 * last offset the consumer reported. The master uses it for WAIT and shows it in INFO replication.
 *
 * Back-pressure: `pause()` stops reading the socket (and calling back, even in the middle of a received
 * chunk); `resume()` continues. While paused, ACKs (or newlines during the RDB) keep the link alive; the
 * master keeps buffering the stream for us up to its `client-output-buffer-limit replica` (256 MB hard /
 * 64 MB for 60 s by default) and then drops the link, after which PSYNC continues from the backlog if it
 * still holds the offset. During the RDB, a pause takes effect after the current chunk.
 */
export class PsyncClient {
  readonly endpoint: RedisEndpoint;
  private readonly socket: net.Socket;
  private readonly opts: PsyncOptions;
  private readonly readTimeoutMs: number;
  private phase: Phase = 'handshake';
  private psyncResult: PsyncResult | undefined;
  private parser: CommandStreamParser | undefined;
  private rdbReader: RdbPayloadReader | undefined;
  private partialLine: Buffer | undefined;
  private handshakeNames: string[] = [];
  private handshakeReplies = 0;
  private handshakeError: { command: string; message: string } | undefined;
  private userPaused = false;
  /** Holds data between the PSYNC reply and the caller receiving the client. */
  private gated = false;
  private leftover: Buffer | undefined;
  private acked: number | undefined;
  private lastDataAt = Date.now();
  private ackTimer: NodeJS.Timeout | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private pending: { resolve: (c: PsyncClient) => void; reject: (e: Error) => void } | undefined;
  private readonly socketClosed: Promise<void>;

  private constructor(endpoint: RedisEndpoint, socket: net.Socket, opts: PsyncOptions) {
    this.endpoint = endpoint;
    this.socket = socket;
    this.opts = opts;
    this.readTimeoutMs = opts.readTimeoutMs ?? 60_000;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 15_000);
    this.socketClosed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.fail(this.linkError(e)));
    socket.on('close', () =>
      this.fail(
        this.linkError(Object.assign(new Error('connection closed by the server'), { code: 'ECONNRESET' })),
      ),
    );
  }

  /** Connects, authenticates, announces `capa eof psync2` and sends PSYNC; resolves with the reply known. */
  static async connect(ep: RedisEndpoint, opts: PsyncOptions): Promise<PsyncClient> {
    if ((opts.replid === undefined) !== (opts.offset === undefined)) {
      throw new TypeError('PsyncClient: replid and offset go together (give both to continue, or neither)');
    }
    if (opts.offset !== undefined && (!Number.isSafeInteger(opts.offset) || opts.offset < 0)) {
      throw new TypeError(`PsyncClient: offset must be a non-negative integer, got ${opts.offset}`);
    }
    const connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    const socket = await openSocket(ep, connectTimeoutMs);
    return new PsyncClient(ep, socket, opts).start(connectTimeoutMs);
  }

  /** The PSYNC outcome. */
  get result(): PsyncResult {
    if (!this.psyncResult) throw new Error('PsyncClient: no PSYNC reply yet');
    return this.psyncResult;
  }

  /** End offset of the last complete command received (startOffset before any). */
  get receivedOffset(): number {
    return this.parser?.commandOffset ?? this.psyncResult?.startOffset ?? -1;
  }

  /** The offset the next ACK reports. */
  get ackOffset(): number {
    return this.acked ?? this.receivedOffset;
  }

  get paused(): boolean {
    return this.userPaused;
  }

  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** Reports the offset the consumer has applied; from now on ACKs carry it instead of the received offset. */
  ack(offset: number): void {
    if (!Number.isSafeInteger(offset)) throw new TypeError(`PsyncClient.ack: bad offset ${offset}`);
    this.acked = offset;
  }

  /** Stops reading and calling back (takes effect after the command being delivered, if any). */
  pause(): void {
    if (this.userPaused || this.phase === 'closed') return;
    this.userPaused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.userPaused) return;
    this.userPaused = false;
    this.lastDataAt = Date.now();
    // Never re-enter the caller: it may call resume() from inside onCommand.
    setImmediate(() => this.continueReading());
  }

  /** Ends the link; onClose is called with `undefined`. */
  async close(): Promise<void> {
    this.shutdown(undefined);
    await this.socketClosed;
  }

  private start(connectTimeoutMs: number): Promise<PsyncClient> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.handshakeTimer = setTimeout(() => {
        const err = Object.assign(new Error('timeout'), {
          code: 'ETIMEDOUT',
          timeoutPhase: 'reply',
          timeoutMs: connectTimeoutMs,
        });
        this.fail(classifyRedisError(err, this.endpoint, 'replication handshake'));
      }, connectTimeoutMs);
      const ep = this.endpoint;
      const commands: CommandArg[][] = [];
      if (ep.password !== undefined) {
        commands.push(ep.username ? ['AUTH', ep.username, ep.password] : ['AUTH', ep.password]);
      }
      const replconf = replicationCommand(ep, 'REPLCONF');
      commands.push([replconf, 'listening-port', this.opts.listeningPort ?? 0]);
      // eof: we accept the diskless `$EOF:` framing; psync2: we understand `+CONTINUE <new replid>`.
      commands.push([replconf, 'capa', 'eof', 'capa', 'psync2']);
      // Errors name the command by what it is; classifyReplicationReply adds the name it was sent under.
      this.handshakeNames = commands.map((c) => (c[0] === replconf ? 'REPLCONF' : String(c[0])));
      // Pipelined like a Redis replica does; PSYNC waits for every +OK.
      this.socket.write(encodeCommands(commands));
    });
  }

  private onData(chunk: Buffer): void {
    this.lastDataAt = Date.now();
    if (this.phase === 'closed') return;
    if (this.leftover) {
      // Data that was already read when the socket got paused; kept in order behind the held bytes.
      this.leftover = Buffer.concat([this.leftover, chunk]);
      return;
    }
    if (this.stopped()) {
      this.leftover = chunk;
      return;
    }
    this.process(chunk);
  }

  private stopped(): boolean {
    return this.userPaused || this.gated || this.phase === 'closed';
  }

  private continueReading(): void {
    if (this.stopped()) return;
    const held = this.leftover;
    this.leftover = undefined;
    if (held) this.process(held);
    if (!this.stopped()) this.socket.resume();
  }

  private process(data: Buffer): void {
    let pos = 0;
    try {
      while (pos < data.length) {
        if (this.stopped()) {
          if (this.phase !== 'closed') this.leftover = data.subarray(pos);
          return;
        }
        switch (this.phase) {
          case 'handshake':
          case 'psync':
          case 'rdb-header': {
            const nl = data.indexOf(10, pos);
            if (nl < 0) {
              this.keepPartialLine(data.subarray(pos));
              return;
            }
            const line = this.takeLine(data, pos, nl);
            pos = nl + 1;
            this.onLine(line);
            break;
          }
          case 'rdb': {
            const reader = this.rdbReader!;
            pos = reader.feed(data, pos);
            if (reader.done) this.rdbDone(reader);
            break;
          }
          case 'stream':
            pos = this.parser!.feed(data, pos);
            break;
          case 'closed':
            return;
        }
      }
    } catch (e) {
      this.fail(e as Error);
    }
  }

  private keepPartialLine(part: Buffer): void {
    const line = this.partialLine ? Buffer.concat([this.partialLine, part]) : Buffer.from(part);
    if (line.length > MAX_LINE) {
      throw replicationProtocolError(this.endpoint, this.errorPhase(), `a reply line over ${MAX_LINE} bytes`);
    }
    this.partialLine = line;
  }

  /** The line data[pos..nl) (plus any partial start), without CR. */
  private takeLine(data: Buffer, pos: number, nl: number): string {
    let bytes = data.subarray(pos, nl);
    if (this.partialLine) {
      bytes = Buffer.concat([this.partialLine, bytes]);
      this.partialLine = undefined;
    }
    const end = bytes.length > 0 && bytes[bytes.length - 1] === 13 ? bytes.length - 1 : bytes.length;
    return bytes.toString('utf8', 0, end);
  }

  private onLine(line: string): void {
    switch (this.phase) {
      case 'handshake':
        this.onHandshakeReply(line);
        return;
      case 'psync':
        this.onPsyncReply(line);
        return;
      case 'rdb-header':
        this.onRdbHeader(line);
        return;
      default:
        return;
    }
  }

  private onHandshakeReply(line: string): void {
    const command = this.handshakeNames[this.handshakeReplies++] ?? 'handshake';
    if (line.startsWith('-')) {
      this.handshakeError ??= { command, message: line.slice(1) };
    } else if (line !== '+OK') {
      throw replicationProtocolError(
        this.endpoint,
        'handshake',
        `'${line.slice(0, 60)}' in reply to ${command}`,
      );
    }
    if (this.handshakeReplies < this.handshakeNames.length) return;
    clearTimeout(this.handshakeTimer);
    if (this.handshakeError) {
      // The first error is the cause: after a failed AUTH every REPLCONF answers NOAUTH.
      const { command: failed, message } = this.handshakeError;
      throw classifyReplicationReply(message, this.endpoint, failed);
    }
    const { replid, offset } = this.opts;
    const name = replicationCommand(this.endpoint, 'PSYNC');
    const psync = replid !== undefined && offset !== undefined ? [name, replid, offset + 1] : [name, '?', -1];
    this.phase = 'psync';
    this.lastDataAt = Date.now();
    this.socket.write(encodeCommand(psync));
    this.ackTimer = setInterval(() => this.tick(), this.opts.ackIntervalMs ?? 1000);
    this.ackTimer.unref();
  }

  private onPsyncReply(line: string): void {
    // Before answering, a master may send bare newlines to keep the link alive.
    if (line === '') return;
    if (line.startsWith('-')) throw classifyReplicationReply(line.slice(1), this.endpoint, 'PSYNC');
    const renamed = this.endpoint.replicationCommands?.psync;
    if (line.startsWith('$') && renamed !== undefined) throw renamedPsyncActsAsSync(this.endpoint, renamed);
    const words = line.split(' ');
    if (words[0] === '+FULLRESYNC' && words.length === 3 && /^\d+$/.test(words[2]!)) {
      this.psyncResult = { mode: 'fullresync', replid: words[1]!, startOffset: Number(words[2]) };
      this.phase = 'rdb-header';
    } else if (words[0] === '+CONTINUE' && words.length <= 2) {
      this.psyncResult = {
        mode: 'continue',
        replid: words[1] || this.opts.replid!,
        startOffset: this.opts.offset!,
      };
      this.startStream();
    } else {
      throw replicationProtocolError(this.endpoint, 'psync', `'${line.slice(0, 80)}' in reply to PSYNC`);
    }
    this.settle();
  }

  /** Resolves connect(), holding further data until the caller's continuation has run. */
  private settle(): void {
    const pending = this.pending;
    this.pending = undefined;
    if (!pending) return;
    this.gated = true;
    this.socket.pause();
    pending.resolve(this);
    setImmediate(() => {
      this.gated = false;
      this.continueReading();
    });
  }

  private onRdbHeader(line: string): void {
    // Newlines keep the link alive while the master forks and writes the RDB.
    if (line === '') return;
    if (line.startsWith('-')) throw classifyReplicationReply(line.slice(1), this.endpoint, 'PSYNC');
    const sink = this.opts.rdb === 'discard' ? () => undefined : this.opts.rdb;
    let reader: RdbPayloadReader;
    try {
      reader = new RdbPayloadReader(line, sink);
    } catch (e) {
      throw e instanceof DtsError
        ? replicationProtocolError(this.endpoint, 'rdb', `RDB header '${line.slice(0, 60)}'`)
        : e;
    }
    this.rdbReader = reader;
    this.phase = 'rdb';
    if (reader.done) this.rdbDone(reader);
  }

  private rdbDone(reader: RdbPayloadReader): void {
    this.rdbReader = undefined;
    this.startStream();
    // A diskless master keeps the stream back until this first ACK.
    this.sendAck();
    this.opts.onRdbEnd?.({ bytes: reader.bytes, diskless: reader.diskless });
  }

  private startStream(): void {
    this.phase = 'stream';
    this.parser = new CommandStreamParser(this.result.startOffset, (argv, endOffset) => {
      this.opts.onCommand(argv, endOffset);
      if (isGetAck(argv)) this.sendAck();
      return this.stopped() ? false : undefined;
    });
  }

  private sendAck(): void {
    if (this.phase !== 'stream') return;
    this.socket.write(encodeCommand([replicationCommand(this.endpoint, 'REPLCONF'), 'ACK', this.ackOffset]));
  }

  private tick(): void {
    if (this.phase === 'closed') return;
    if (!this.userPaused && !this.gated && Date.now() - this.lastDataAt > this.readTimeoutMs) {
      this.fail(replicationTimeout(this.endpoint, this.errorPhase(), this.readTimeoutMs));
      return;
    }
    if (this.phase === 'stream') this.sendAck();
    // What a Redis replica sends while it loads the RDB: refreshes the master's view of us without
    // claiming an offset (an early ACK would make a diskless master start streaming).
    else if (this.phase === 'rdb' || this.phase === 'rdb-header') this.socket.write(NEWLINE);
  }

  private errorPhase(): ReplicationPhase {
    switch (this.phase) {
      case 'handshake':
        return 'handshake';
      case 'psync':
        return 'psync';
      case 'rdb-header':
      case 'rdb':
        return 'rdb';
      default:
        return 'stream';
    }
  }

  private linkError(e: Error): DtsError {
    return this.phase === 'handshake'
      ? classifyRedisError(e, this.endpoint, 'replication handshake')
      : replicationLinkLost(this.endpoint, this.errorPhase(), e);
  }

  private fail(err: Error): void {
    this.shutdown(err);
  }

  private shutdown(err: Error | undefined): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    clearTimeout(this.handshakeTimer);
    clearInterval(this.ackTimer);
    this.leftover = undefined;
    this.partialLine = undefined;
    this.socket.destroy();
    const pending = this.pending;
    this.pending = undefined;
    if (pending) {
      pending.reject(err ?? new Error('PsyncClient closed before the PSYNC reply'));
      return;
    }
    this.opts.onClose?.(err);
  }
}

/** `REPLCONF GETACK …`, case-insensitively, without decoding every command name. */
function isGetAck(argv: Buffer[]): boolean {
  return argv.length >= 2 && equalsUpper(argv[0]!, 'REPLCONF') && equalsUpper(argv[1]!, 'GETACK');
}

function equalsUpper(buf: Buffer, upper: string): boolean {
  if (buf.length !== upper.length) return false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if ((c >= 0x61 && c <= 0x7a ? c - 32 : c) !== upper.charCodeAt(i)) return false;
  }
  return true;
}

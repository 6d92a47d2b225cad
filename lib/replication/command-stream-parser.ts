import { DtsError } from '../errors.ts';

/**
 * Called once per command of the replication stream, in order. `endOffset` is the replication offset of
 * the command's last byte. Return `false` to stop the current `feed` right after this command.
 *
 * The Buffers in `argv` are views of the received socket chunks (no copy): copy what you keep for long,
 * or it pins the whole chunk in memory.
 */
export type StreamCommandHandler = (argv: Buffer[], endOffset: number) => boolean | undefined;

// Parser states. The header bytes (`*3\r\n$5\r\n`) are walked one by one with integer state only;
// bulk bodies are taken as slices by length, so the per-byte work is limited to a few header bytes.
const START = 0;
const ARRAY_LEN = 1;
const ARRAY_LF = 2;
const BULK_START = 3;
const BULK_LEN = 4;
const BULK_LEN_LF = 5;
const BULK_BODY = 6;
const BULK_CR = 7;
const BULK_LF = 8;
const INLINE_LF = 9;

const CR = 13;
const LF = 10;
/** 15 digits keep every length a safe integer; real lengths are far shorter. */
const MAX_DIGITS = 15;

/**
 * Streaming parser of the master → replica command stream (what follows the RDB, or `+CONTINUE`).
 *
 * Offsets follow Redis: the stream's first byte has offset `startOffset + 1`, and a replica that has
 * processed every byte up to and including offset N reports N (`master_repl_offset`, `REPLCONF ACK N`)
 * and resumes with `PSYNC <replid> N+1`. So after a `+FULLRESYNC <id> <O>` or a `+CONTINUE` for
 * `PSYNC <id> O+1`, construct with `startOffset = O`; each command's `endOffset` is `O` plus the bytes
 * consumed through the end of that command, and equals the master's `master_repl_offset` once the
 * master has sent nothing more.
 *
 * The stream is RESP arrays of bulk strings. Like a Redis replica, an empty inline line (`\n` or
 * `\r\n`) and an empty or null array (`*0`, `*-1`) are accepted as no-ops that still advance the offset;
 * any other inline data is a protocol error (Redis treats it as stream corruption too).
 *
 * `feed` may be given the stream split at any byte; nothing is copied except bulk strings that arrive
 * split across feeds (joined once, when complete).
 */
export class CommandStreamParser {
  private readonly onCommand: StreamCommandHandler;
  private state = START;
  /** Offset of the last byte consumed. */
  private consumed: number;
  /** End offset of the last complete command (or no-op). */
  private boundary: number;
  private num = 0;
  private digits = 0;
  private negative = false;
  private argc = 0;
  private argv: Buffer[] = [];
  /** Bytes of the current bulk body still to come. */
  private need = 0;
  /** Pieces of a bulk body split across feeds. */
  private parts: Buffer[] | undefined;

  constructor(startOffset: number, onCommand: StreamCommandHandler) {
    if (!Number.isSafeInteger(startOffset) || startOffset < -1) {
      throw new TypeError(`startOffset must be an integer >= -1, got ${startOffset}`);
    }
    this.consumed = startOffset;
    this.boundary = startOffset;
    this.onCommand = onCommand;
  }

  /** Offset of the last byte consumed (a command may be partly received). */
  get offset(): number {
    return this.consumed;
  }

  /** End offset of the last complete command: the offset a replica has processed. */
  get commandOffset(): number {
    return this.boundary;
  }

  /** True at a command boundary (nothing partial buffered). */
  get idle(): boolean {
    return this.state === START;
  }

  /**
   * Parses `data[from..]`. Returns the index where parsing stopped: `data.length`, or the index just after
   * the command whose handler returned `false` (feed the rest later to continue).
   */
  feed(data: Buffer, from = 0): number {
    const end = data.length;
    // Absolute offset of the byte before data[0]: the offset of data[i] is base + i + 1.
    const base = this.consumed - from;
    let pos = from;
    let state = this.state;
    try {
      while (pos < end) {
        switch (state) {
          case START: {
            const c = data[pos++]!;
            if (c === 0x2a) {
              this.num = 0;
              this.digits = 0;
              this.negative = false;
              state = ARRAY_LEN;
            } else if (c === LF) {
              this.boundary = base + pos;
            } else if (c === CR) {
              state = INLINE_LF;
            } else {
              throw this.protocolError(base + pos, `expected '*', got ${describeByte(c)}`);
            }
            break;
          }
          case INLINE_LF: {
            const c = data[pos++]!;
            if (c !== LF) throw this.protocolError(base + pos, `expected LF, got ${describeByte(c)}`);
            this.boundary = base + pos;
            state = START;
            break;
          }
          case ARRAY_LEN:
          case BULK_LEN: {
            const c = data[pos++]!;
            if (c >= 0x30 && c <= 0x39) {
              if (++this.digits > MAX_DIGITS) throw this.protocolError(base + pos, 'length too long');
              this.num = this.num * 10 + (c - 0x30);
            } else if (c === 0x2d && this.digits === 0 && !this.negative) {
              this.negative = true;
            } else if (c === CR && this.digits > 0) {
              state = state === ARRAY_LEN ? ARRAY_LF : BULK_LEN_LF;
            } else {
              throw this.protocolError(base + pos, `bad length byte ${describeByte(c)}`);
            }
            break;
          }
          case ARRAY_LF: {
            const c = data[pos++]!;
            if (c !== LF) throw this.protocolError(base + pos, `expected LF, got ${describeByte(c)}`);
            if (this.negative || this.num === 0) {
              // `*0` / `*-1`: Redis skips them without running anything.
              this.boundary = base + pos;
              state = START;
            } else {
              this.argc = this.num;
              this.argv = [];
              state = BULK_START;
            }
            break;
          }
          case BULK_START: {
            const c = data[pos++]!;
            if (c !== 0x24) throw this.protocolError(base + pos, `expected '$', got ${describeByte(c)}`);
            this.num = 0;
            this.digits = 0;
            this.negative = false;
            state = BULK_LEN;
            break;
          }
          case BULK_LEN_LF: {
            const c = data[pos++]!;
            if (c !== LF) throw this.protocolError(base + pos, `expected LF, got ${describeByte(c)}`);
            if (this.negative) throw this.protocolError(base + pos, 'negative bulk length in a command');
            this.need = this.num;
            // Fast path: the whole body and its CRLF are here, so the argument is a view.
            const stop = pos + this.need;
            if (stop + 2 <= end && data[stop] === CR && data[stop + 1] === LF) {
              this.argv.push(data.subarray(pos, stop));
              pos = stop + 2;
              state = this.argv.length === this.argc ? START : BULK_START;
              if (state === START && this.emit(base + pos) === false) return pos;
            } else {
              this.parts = [];
              state = BULK_BODY;
            }
            break;
          }
          case BULK_BODY: {
            const take = Math.min(this.need, end - pos);
            if (take > 0) this.parts!.push(data.subarray(pos, pos + take));
            pos += take;
            this.need -= take;
            if (this.need === 0) {
              const parts = this.parts!;
              this.parts = undefined;
              this.argv.push(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
              state = BULK_CR;
            }
            break;
          }
          case BULK_CR: {
            const c = data[pos++]!;
            if (c !== CR) throw this.protocolError(base + pos, `expected CR, got ${describeByte(c)}`);
            state = BULK_LF;
            break;
          }
          case BULK_LF: {
            const c = data[pos++]!;
            if (c !== LF) throw this.protocolError(base + pos, `expected LF, got ${describeByte(c)}`);
            state = this.argv.length === this.argc ? START : BULK_START;
            if (state === START && this.emit(base + pos) === false) return pos;
            break;
          }
        }
      }
    } finally {
      // Also runs on the early returns above and when a handler throws.
      this.state = state;
      this.consumed = base + pos;
    }
    return pos;
  }

  private emit(endOffset: number): boolean | undefined {
    const argv = this.argv;
    this.argv = [];
    this.boundary = endOffset;
    return this.onCommand(argv, endOffset);
  }

  private protocolError(offset: number, what: string): DtsError {
    return new DtsError(
      'REPLICATION_PROTOCOL',
      `the replication stream is malformed at offset ${offset}: ${what}`,
      'reconnect to resume from the last applied offset; if it repeats, report a bug with the source server version',
    );
  }
}

function describeByte(c: number): string {
  return c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `0x${c.toString(16).padStart(2, '0')}`;
}

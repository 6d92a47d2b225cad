/**
 * RESP2 encoding and a streaming reply parser, working on Buffers end to end.
 *
 * The data plane (SCAN/DUMP on the source, RESTORE on the destination) moves millions of values; the
 * parser therefore hands out Buffer views of the received data instead of strings, and resumes at
 * any byte boundary so a large reply split over many socket reads is scanned once.
 */

export type RespValue = Buffer | string | number | null | RespError | RespValue[];

/** An error reply (`-ERR …`). Returned as a value inside arrays (EXEC), thrown by convenience calls. */
export class RespError extends Error {
  override readonly name = 'RespError';
  /** First word of the reply: ERR, WRONGTYPE, OOM, NOPERM, BUSYKEY … */
  readonly prefix: string;
  constructor(message: string) {
    super(message);
    this.prefix = message.split(' ', 1)[0] ?? '';
  }
}

const CRLF = Buffer.from('\r\n');

export type CommandArg = string | Buffer | number;

/** Encodes one command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly CommandArg[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, CRLF);
  }
  return Buffer.concat(parts);
}

/** Encodes many commands into one Buffer (one socket write). */
export function encodeCommands(commands: readonly (readonly CommandArg[])[]): Buffer {
  return Buffer.concat(commands.map(encodeCommand));
}

/** Bytes of `$<n>\r\n<n bytes>\r\n` for a bulk of n bytes. */
export function bulkSize(n: number): number {
  return n + decimalLength(n) + 5;
}

export function decimalLength(n: number): number {
  let len = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    len++;
  }
  return len;
}

/** Writes `$<len>\r\n<bytes>\r\n` at pos; returns the new position. */
export function writeBulk(out: Buffer, pos: number, src: Buffer, start = 0, end = src.length): number {
  out[pos++] = 0x24; // '$'
  pos = writeDecimal(out, pos, end - start);
  out[pos++] = 13;
  out[pos++] = 10;
  pos = copyBytes(src, start, end, out, pos);
  out[pos++] = 13;
  out[pos++] = 10;
  return pos;
}

/** Writes `$<len>\r\n<ascii>\r\n` for a short ASCII argument (command names, numbers). */
export function writeAsciiBulk(out: Buffer, pos: number, s: string): number {
  out[pos++] = 0x24;
  pos = writeDecimal(out, pos, s.length);
  out[pos++] = 13;
  out[pos++] = 10;
  for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i);
  out[pos++] = 13;
  out[pos++] = 10;
  return pos;
}

/** Writes a non-negative integer in ASCII; returns the new position. */
export function writeDecimal(out: Buffer, pos: number, n: number): number {
  const len = decimalLength(n);
  for (let i = pos + len - 1; i >= pos; i--) {
    out[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return pos + len;
}

/**
 * Buffer#copy costs a native call and argument checks; keys and small values are copied faster
 * byte by byte. Returns the new position in `out`.
 */
export function copyBytes(src: Buffer, start: number, end: number, out: Buffer, pos: number): number {
  if (end - start > 64) return pos + src.copy(out, pos, start, end);
  for (let i = start; i < end; i++) out[pos++] = src[i]!;
  return pos;
}

interface Frame {
  items: RespValue[];
  remaining: number;
}

/**
 * Incremental RESP2 (and the RESP3 scalar types a RESP2 client may see) parser.
 * `feed` any slice of the stream; `onReply` is called once per complete top-level reply, in order.
 */
export class RespParser {
  private readonly onReply: (value: RespValue) => void;
  private stack: Frame[] = [];
  /** Bytes of an incomplete header line carried over from the previous feed. */
  private carry: Buffer | undefined;
  /** A bulk string being collected across feeds. */
  private bulkParts: Buffer[] | undefined;
  private bulkRemaining = 0;

  constructor(onReply: (value: RespValue) => void) {
    this.onReply = onReply;
  }

  /** True when no partial reply is buffered (used to check a connection is at a clean boundary). */
  get idle(): boolean {
    return this.stack.length === 0 && this.carry === undefined && this.bulkParts === undefined;
  }

  feed(data: Buffer): void {
    let pos = 0;
    if (this.bulkParts) {
      pos = this.continueBulk(data);
      if (this.bulkParts) return;
    }
    if (this.carry) {
      // Complete only the split header line; the rest of `data` is parsed in place, never copied.
      const nl = data.indexOf(10, pos);
      if (nl < 0) {
        this.carry = Buffer.concat([this.carry, data.subarray(pos)]);
        return;
      }
      const line = Buffer.concat([this.carry, data.subarray(pos, nl + 1)]);
      this.carry = undefined;
      pos = nl + 1;
      const bulkLen = this.header(line, 0, line.length - 1);
      if (bulkLen >= 0) pos = this.bulkBody(data, pos, bulkLen);
    }
    const end = data.length;
    while (pos < end && this.bulkParts === undefined) {
      const lineEnd = findLf(data, pos, end);
      if (lineEnd < 0) {
        this.carry = Buffer.from(data.subarray(pos));
        return;
      }
      const bulkLen = this.header(data, pos, lineEnd);
      pos = lineEnd + 1;
      if (bulkLen >= 0) pos = this.bulkBody(data, pos, bulkLen);
    }
  }

  /** Parses the header line buf[start..lineEnd]; returns a bulk length to read next, or -1. */
  private header(buf: Buffer, start: number, lineEnd: number): number {
    const type = buf[start]!;
    const headerEnd = lineEnd - 1; // position of '\r'
    switch (type) {
      case 0x24: {
        // '$' bulk string
        const len = parseIntAscii(buf, start + 1, headerEnd);
        if (len < 0) this.emit(null);
        return len;
      }
      case 0x2b: // '+' simple string: the two a pipeline sees by the million are interned
        if (headerEnd - start === 3 && buf[start + 1] === 0x4f && buf[start + 2] === 0x4b) this.emit('OK');
        else if (headerEnd - start === 7 && buf[start + 1] === 0x51 && buf[start + 2] === 0x55)
          this.emit('QUEUED');
        else this.emit(buf.toString('latin1', start + 1, headerEnd));
        return -1;
      case 0x3a: // ':' integer
        this.emit(parseIntAscii(buf, start + 1, headerEnd));
        return -1;
      case 0x2d: // '-' error
        this.emit(new RespError(buf.toString('utf8', start + 1, headerEnd)));
        return -1;
      case 0x2a: {
        // '*' array
        const n = parseIntAscii(buf, start + 1, headerEnd);
        if (n < 0) this.emit(null);
        else if (n === 0) this.emit([]);
        else this.stack.push({ items: new Array(n), remaining: n });
        return -1;
      }
      case 0x5f: // '_' RESP3 null
        this.emit(null);
        return -1;
      default:
        throw new Error(`protocol error: unexpected byte 0x${type.toString(16)} in a reply`);
    }
  }

  /** Emits a bulk body that starts at pos, or starts collecting it; returns the new position. */
  private bulkBody(buf: Buffer, pos: number, len: number): number {
    if (pos + len + 2 <= buf.length) {
      this.emit(buf.subarray(pos, pos + len));
      return pos + len + 2;
    }
    this.bulkParts = [];
    this.bulkRemaining = len + 2;
    this.collectBulk(buf.subarray(pos));
    return buf.length;
  }

  private continueBulk(buf: Buffer): number {
    const take = Math.min(this.bulkRemaining, buf.length);
    this.collectBulk(buf.subarray(0, take));
    return take;
  }

  private collectBulk(part: Buffer): void {
    const parts = this.bulkParts!;
    const take = Math.min(part.length, this.bulkRemaining);
    if (take > 0) parts.push(part.subarray(0, take));
    this.bulkRemaining -= take;
    if (this.bulkRemaining === 0) {
      this.bulkParts = undefined;
      const whole = Buffer.concat(parts);
      this.emit(whole.subarray(0, whole.length - 2));
    }
  }

  private emit(value: RespValue): void {
    let v = value;
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (!top) {
        this.onReply(v);
        return;
      }
      top.items[top.items.length - top.remaining] = v;
      if (--top.remaining > 0) return;
      this.stack.pop();
      v = top.items;
    }
  }
}

/** Header lines are a few bytes long: a JS scan beats the native indexOf call. */
function findLf(buf: Buffer, from: number, end: number): number {
  for (let i = from; i < end; i++) if (buf[i] === 10) return i;
  return -1;
}

function parseIntAscii(buf: Buffer, start: number, end: number): number {
  let i = start;
  let neg = false;
  if (buf[i] === 0x2d) {
    neg = true;
    i++;
  }
  let n = 0;
  for (; i < end; i++) {
    const c = buf[i]! - 48;
    if (c < 0 || c > 9) throw new Error('protocol error: bad integer in a reply');
    n = n * 10 + c;
  }
  return neg ? -n : n;
}

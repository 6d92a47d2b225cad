import { DtsError } from '../errors.ts';

/** Receives the RDB payload piece by piece; the Buffers are views of socket chunks (copy to keep). */
export type RdbSink = (chunk: Buffer) => void;

/** The mark that ends a diskless RDB is as long as a run id. */
const EOF_MARK_LENGTH = 40;

/**
 * Frames the RDB a master sends after `+FULLRESYNC`, passing it on as it arrives (never whole in memory):
 * either `$<len>\r\n` followed by exactly len bytes (disk-based: no trailing CRLF), or, when the replica
 * announced `capa eof`, `$EOF:<40-byte mark>\r\n` followed by the payload and the same mark (diskless).
 * The command stream follows the last byte directly, possibly in the same socket chunk.
 */
export class RdbPayloadReader {
  /** True for the `$EOF:` (diskless) framing. */
  readonly diskless: boolean;
  /** Length announced by `$<len>`, or undefined when diskless. */
  readonly announcedBytes: number | undefined;
  private readonly sink: RdbSink;
  private readonly mark: Buffer | undefined;
  private remaining: number;
  /** Diskless only: the unpassed tail (< mark length), which may be the start of the mark. */
  private held: Buffer = Buffer.alloc(0);
  private total = 0;
  private finished = false;

  /** `header` is the line after `+FULLRESYNC` without its CRLF: `$123` or `$EOF:<mark>`. */
  constructor(header: string, sink: RdbSink) {
    this.sink = sink;
    if (header.startsWith('$EOF:')) {
      const mark = header.slice(5);
      if (mark.length !== EOF_MARK_LENGTH) throw badHeader(header);
      this.diskless = true;
      this.mark = Buffer.from(mark, 'latin1');
      this.announcedBytes = undefined;
      this.remaining = 0;
    } else {
      const len = /^\$(\d{1,15})$/.exec(header)?.[1];
      if (len === undefined) throw badHeader(header);
      this.diskless = false;
      this.mark = undefined;
      this.announcedBytes = Number(len);
      this.remaining = this.announcedBytes;
      this.finished = this.remaining === 0;
    }
  }

  /** Payload bytes passed to the sink so far (the end mark excluded). */
  get bytes(): number {
    return this.total;
  }

  get done(): boolean {
    return this.finished;
  }

  /** Consumes payload from data[from..]; returns the index of the first byte after the payload (or data.length). */
  feed(data: Buffer, from = 0): number {
    if (this.finished) return from;
    return this.mark ? this.feedUntilMark(data, from, this.mark) : this.feedLength(data, from);
  }

  private feedLength(data: Buffer, from: number): number {
    const take = Math.min(this.remaining, data.length - from);
    if (take > 0) this.pass(data.subarray(from, from + take));
    this.remaining -= take;
    if (this.remaining === 0) this.finished = true;
    return from + take;
  }

  /**
   * Finds the first occurrence of the mark in held ⧺ data[from..]. A mark starting in `held` ends within
   * the first (mark length - 1) new bytes, so a small joined window covers it; one native indexOf over
   * the new bytes covers the rest.
   */
  private feedUntilMark(data: Buffer, from: number, mark: Buffer): number {
    const region = data.subarray(from);
    const held = this.held;
    let at = -1;
    if (held.length > 0) {
      const window = Buffer.concat([held, region.subarray(0, EOF_MARK_LENGTH - 1)]);
      at = window.indexOf(mark);
    }
    if (at < 0) {
      const inRegion = region.indexOf(mark);
      if (inRegion >= 0) at = held.length + inRegion;
    }
    if (at >= 0) {
      // `at` indexes held ⧺ region; pass what precedes the mark.
      if (at <= held.length) {
        if (at > 0) this.pass(held.subarray(0, at));
      } else {
        if (held.length > 0) this.pass(held);
        this.pass(region.subarray(0, at - held.length));
      }
      this.held = Buffer.alloc(0);
      this.finished = true;
      return from + at + EOF_MARK_LENGTH - held.length;
    }
    // Not found: everything but the last (mark length - 1) bytes is surely payload.
    const keep = Math.min(EOF_MARK_LENGTH - 1, held.length + region.length);
    const passCount = held.length + region.length - keep;
    if (passCount > 0) {
      if (passCount <= held.length) {
        this.pass(held.subarray(0, passCount));
      } else {
        if (held.length > 0) this.pass(held);
        this.pass(region.subarray(0, passCount - held.length));
      }
    }
    // Copied, so that a 39-byte tail does not pin a 64 KB socket chunk.
    this.held =
      keep <= region.length
        ? Buffer.from(region.subarray(region.length - keep))
        : Buffer.concat([held.subarray(held.length - (keep - region.length)), region]);
    return data.length;
  }

  private pass(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.total += chunk.length;
    this.sink(chunk);
  }
}

function badHeader(header: string): DtsError {
  return new DtsError(
    'REPLICATION_PROTOCOL',
    `the source sent an unexpected RDB header after +FULLRESYNC: '${header.slice(0, 60)}'`,
    'check that the source is Redis-compatible and supports PSYNC; report a bug with its version if it is',
  );
}

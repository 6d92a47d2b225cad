import type { RawConnection } from '../redis/raw-connection.ts';
import { type CommandArg, encodeCommand, RespError, type RespValue } from '../redis/resp.ts';
import { hasPexpiretime } from '../redis/server-versions.ts';
import { printableKey } from './copy-key-in-parts.ts';
import { streamCommandsFromInfo } from './copy-key-stream.ts';
import { valueCommands, wholeRead } from './logical-writes.ts';
import { chunkReadError, type KeyBatch, parseStamp, type Stamp, timeMs } from './stamped-chunk-reader.ts';

/**
 * A key of a logical chunk: the commands that rebuild its value; 'parts' for a key copied on its own
 * in parts (a key whose type changed between the chunk's two reads; a hash of a source with field
 * expiries); an error for a type no
 * command writes (a module's); null when it is gone.
 */
export type LogicalValue = { commands: Buffer[][] } | 'parts' | { error: string } | null;

/** A chunk read as data instead of DUMP payloads, for a destination that cannot RESTORE them. */
export interface LogicalChunk {
  cursorAfter: string;
  keys: Buffer[];
  values: LogicalValue[];
  /** Absolute expiry in ms per key; 0 = no expiry. */
  expireAt: number[];
  stamp: Stamp;
  /** Value bytes in the chunk. */
  bytes: number;
}

/** Field expiries (HPEXPIRETIME) exist from 7.4: such a source's hashes go through the copy in parts. */
const FIELD_TTL_VERSION = 70400;

/**
 * Reads key batches as data in two round trips: `TYPE k…` pipelined, then one transaction
 * `MULTI; (TYPE k; <whole read by type>; PEXPIRETIME k (PTTL k; TIME))…; INFO replication; EXEC`, so the
 * whole chunk carries one stamp as a DUMP chunk does (StampedChunkReader). TYPE is read again inside
 * the transaction: a key whose type changed in between is copied in parts instead.
 */
export class LogicalChunkReader {
  private readonly conn: RawConnection;
  private readonly legacy: boolean;
  private readonly transaction: boolean;
  private readonly hashesInParts: boolean;
  private readonly maxCommandBytes: number;
  private readonly targetVersion: number | undefined;

  /** `boundedStamp`: no MULTI (a cluster source's chunk spans slots), as in StampedChunkReader. */
  constructor(
    conn: RawConnection,
    o: { sourceVersion: number; maxCommandBytes: number; targetVersion?: number; boundedStamp?: boolean },
  ) {
    this.conn = conn;
    this.legacy = !hasPexpiretime(o.sourceVersion);
    this.transaction = o.boundedStamp !== true;
    this.hashesInParts = o.sourceVersion >= FIELD_TTL_VERSION;
    this.maxCommandBytes = o.maxCommandBytes;
    this.targetVersion = o.targetVersion;
  }

  async read(batch: KeyBatch): Promise<LogicalChunk> {
    const keys = batch.keys;
    const types = await this.send(keys.map((k) => ['TYPE', k]));
    const commands: CommandArg[][] = [];
    if (this.transaction) commands.push(['MULTI']);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const t = types[i];
      if (t instanceof RespError) throw chunkReadError(this.conn, t);
      commands.push(['TYPE', key], wholeRead(String(t), key) ?? ['EXISTS', key]);
      if (this.legacy) commands.push(['PTTL', key], ['TIME']);
      else commands.push(['PEXPIRETIME', key]);
    }
    commands.push(['INFO', 'replication']);
    if (this.transaction) commands.push(['EXEC']);
    const replies = await this.send(commands);
    let exec: RespValue = replies;
    if (this.transaction) {
      const queued = replies.slice(0, -1).find((r) => r instanceof RespError);
      if (queued) throw chunkReadError(this.conn, queued as RespError);
      exec = replies[replies.length - 1] ?? null;
      if (exec instanceof RespError) throw chunkReadError(this.conn, exec);
      if (!Array.isArray(exec)) throw chunkReadError(this.conn, new RespError('ERR transaction discarded'));
    }
    const out = exec as RespValue[];
    const perKey = this.legacy ? 4 : 3;
    const chunk: LogicalChunk = {
      cursorAfter: batch.cursorAfter,
      keys,
      values: new Array(keys.length),
      expireAt: new Array(keys.length),
      stamp: parseStamp(out[out.length - 1] ?? null),
      bytes: 0,
    };
    for (let i = 0; i < keys.length; i++) {
      const at = perKey * i;
      const [type, value, ttl] = [out[at], out[at + 1], out[at + 2]];
      for (const r of [type, ttl]) if (r instanceof RespError) throw chunkReadError(this.conn, r);
      const t = String(type);
      const before = String(types[i]);
      const ms = Number(ttl);
      chunk.expireAt[i] = ms < 0 ? 0 : this.legacy ? timeMs(out[at + 3] ?? null) + ms : ms;
      chunk.values[i] = await this.valueOf(keys[i]!, t, before, value ?? null);
      chunk.bytes += replyBytes(value ?? null);
    }
    return chunk;
  }

  private async valueOf(key: Buffer, type: string, before: string, value: RespValue): Promise<LogicalValue> {
    if (type === 'none') return null;
    if (type !== before || (type === 'hash' && this.hashesInParts)) return 'parts';
    if (type === 'stream') {
      const commands = await streamCommandsFromInfo(key, value, this.targetVersion);
      return commands ? { commands } : 'parts';
    }
    if (!wholeRead(type, key)) {
      return {
        error:
          `key ${printableKey(key)} is of type ${type} (a module's), which no command can write on a ` +
          'destination that cannot RESTORE the source’s payloads',
      };
    }
    const commands = valueCommands(key, type, value, this.maxCommandBytes);
    return commands ? { commands } : 'parts';
  }

  private send(commands: CommandArg[][]): Promise<RespValue[]> {
    if (commands.length === 0) return Promise.resolve([]);
    const buf = Buffer.concat(commands.map(encodeCommand));
    return new Promise((resolve, reject) => {
      const replies: RespValue[] = [];
      this.conn.write(buf, commands.length, {
        onReply: (v) => {
          replies.push(v);
        },
        onDone: () => resolve(replies),
        onFail: reject,
      });
    });
  }
}

function replyBytes(v: RespValue): number {
  if (Buffer.isBuffer(v)) return v.length;
  if (Array.isArray(v)) return v.reduce((n: number, e) => n + replyBytes(e), 0);
  return 0;
}

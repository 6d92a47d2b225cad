import { describeEndpoint } from '../redis/endpoint.ts';
import type { RawConnection } from '../redis/raw-connection.ts';
import { type CommandArg, encodeCommand, RespError, type RespValue } from '../redis/resp.ts';
import type { TargetRouting } from '../redis/target-routing.ts';
import type { LogicalChunk } from './logical-chunk-reader.ts';
import { FATAL_PREFIXES, fatalWriteError, type KeyError, type WriteResult } from './restore-writer.ts';

/**
 * The writes that replace `key` with a value rebuilt from commands, as one RESTORE … REPLACE ABSTTL
 * would: DEL (a redone chunk or --existing-keys overwrite may find the key), the value, its expiry.
 */
export function replaceCommands(
  key: Buffer,
  commands: readonly Buffer[][],
  expireAt: number,
): CommandArg[][] {
  const out: CommandArg[][] = [['DEL', key], ...commands];
  if (expireAt > 0) out.push(['PEXPIREAT', key, String(expireAt)]);
  return out;
}

/**
 * Writes logical chunks to the destination: each key's replaceCommands in its own MULTI/EXEC (the key
 * never shows half a value or a value without its expiry), every key of a chunk pipelined, the chunk
 * split over a cluster's nodes by slot. Bytes written and not yet acknowledged are bounded per node,
 * as RestoreWriter bounds them.
 */
export class LogicalWriter {
  private readonly conns: readonly RawConnection[];
  private readonly routing: TargetRouting;
  private readonly maxInFlightBytes: number;
  private readonly inFlight: number[];
  private waiters: (() => void)[] = [];

  /** `conns[i]` writes to `routing.nodes[i]`. */
  constructor(conns: readonly RawConnection[], routing: TargetRouting, maxInFlightBytes: number) {
    this.conns = conns;
    this.routing = routing;
    this.maxInFlightBytes = maxInFlightBytes;
    this.inFlight = conns.map(() => 0);
  }

  async write(chunk: LogicalChunk): Promise<WriteResult> {
    const result: WriteResult = { written: 0, vanished: 0, oversized: [], errors: [] };
    const byNode = new Map<number, number[]>();
    for (let i = 0; i < chunk.keys.length; i++) {
      const v = chunk.values[i];
      if (v === null || v === undefined) result.vanished++;
      else if (v === 'parts') result.oversized.push(i);
      else if ('error' in v) result.errors.push({ key: chunk.keys[i]!, error: v.error });
      else {
        const node = this.routing.nodeOf(chunk.keys[i]!);
        const list = byNode.get(node);
        if (list) list.push(i);
        else byNode.set(node, [i]);
      }
    }
    const parts = await Promise.all([...byNode].map(([node, index]) => this.writeTo(node, chunk, index)));
    for (const p of parts) {
      result.written += p.written;
      result.errors.push(...p.errors);
    }
    return result;
  }

  private async writeTo(
    node: number,
    chunk: LogicalChunk,
    index: readonly number[],
  ): Promise<{ written: number; errors: KeyError[] }> {
    const bufs: Buffer[] = [];
    /** Replies per key: MULTI, each command's QUEUED, EXEC. */
    const counts: number[] = [];
    for (const i of index) {
      const v = chunk.values[i] as { commands: Buffer[][] };
      const commands = [
        ['MULTI'],
        ...replaceCommands(chunk.keys[i]!, v.commands, chunk.expireAt[i]!),
        ['EXEC'],
      ];
      for (const c of commands) bufs.push(encodeCommand(c));
      counts.push(commands.length);
    }
    const out = Buffer.concat(bufs);
    await this.reserve(node, out.length);
    const conn = this.conns[node]!;
    const who = describeEndpoint(conn.endpoint);
    const total = counts.reduce((a, b) => a + b, 0);
    return new Promise((resolve, reject) => {
      const errors: KeyError[] = [];
      let fatal: RespError | undefined;
      let k = 0;
      let seen = 0;
      let keyError: string | undefined;
      conn.write(out, total, {
        onReply: (v) => {
          const err = firstError(v);
          if (err) {
            if (FATAL_PREFIXES.has(err.prefix)) fatal ??= err;
            keyError ??= err.message;
          }
          if (++seen < counts[k]!) return;
          if (keyError) errors.push({ key: chunk.keys[index[k]!]!, error: keyError });
          k++;
          seen = 0;
          keyError = undefined;
        },
        onDone: () => {
          this.release(node, out.length);
          if (fatal) reject(fatalWriteError(who, fatal));
          else resolve({ written: index.length - errors.length, errors });
        },
        onFail: (e) => {
          this.release(node, out.length);
          reject(e);
        },
      });
    });
  }

  private async reserve(node: number, bytes: number): Promise<void> {
    // A single chunk larger than the bound is let through alone rather than deadlocking.
    while (this.inFlight[node]! > 0 && this.inFlight[node]! + bytes > this.maxInFlightBytes) {
      await new Promise<void>((r) => this.waiters.push(r));
    }
    this.inFlight[node]! += bytes;
  }

  private release(node: number, bytes: number): void {
    this.inFlight[node]! -= bytes;
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}

/** The error of a reply, or of an EXEC reply's element (EXECABORT comes as the EXEC reply itself). */
function firstError(v: RespValue): RespError | undefined {
  if (v instanceof RespError) return v;
  if (Array.isArray(v)) for (const e of v) if (e instanceof RespError) return e;
  return undefined;
}

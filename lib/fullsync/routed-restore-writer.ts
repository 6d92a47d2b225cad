import type { TargetRouting } from '../redis/target-routing.ts';
import type { RestoreBatch, RestoreWriter, WriteResult } from './restore-writer.ts';

/**
 * RESTORE into a cluster destination: each chunk is split by the node that owns each key's slot, and
 * the parts are written to their nodes at once (every node's pipeline stays busy). RESTORE … REPLACE
 * needs no transaction, so a chunk spread over nodes is as safe to redo as one on a single server.
 */
export class RoutedRestoreWriter {
  private readonly writers: readonly RestoreWriter[];
  private readonly routing: TargetRouting;

  /** `writers[i]` writes to `routing.nodes[i]`. */
  constructor(writers: readonly RestoreWriter[], routing: TargetRouting) {
    this.writers = writers;
    this.routing = routing;
  }

  async write<B extends RestoreBatch>(chunk: B): Promise<WriteResult> {
    if (this.writers.length === 1) return this.writers[0]!.write(chunk);
    const parts = new Map<number, { chunk: B; index: number[] }>();
    for (let i = 0; i < chunk.keys.length; i++) {
      const node = this.routing.nodeOf(chunk.keys[i]!);
      let part = parts.get(node);
      if (!part) {
        part = {
          chunk: { ...chunk, keys: [], payloads: [], expireAt: [], bytes: 0 },
          index: [],
        };
        parts.set(node, part);
      }
      part.chunk.keys.push(chunk.keys[i]!);
      part.chunk.payloads.push(chunk.payloads[i]!);
      part.chunk.expireAt.push(chunk.expireAt[i]!);
      part.chunk.bytes += chunk.payloads[i]?.length ?? 0;
      part.index.push(i);
    }
    const results = await Promise.all(
      [...parts].map(async ([node, part]) => ({ part, result: await this.writers[node]!.write(part.chunk) })),
    );
    const merged: WriteResult = { written: 0, vanished: 0, oversized: [], errors: [] };
    for (const { part, result } of results) {
      merged.written += result.written;
      merged.vanished += result.vanished;
      // The caller looks oversized keys up in the whole chunk.
      for (const i of result.oversized) merged.oversized.push(part.index[i]!);
      merged.errors.push(...result.errors);
    }
    merged.oversized.sort((a, b) => a - b);
    return merged;
  }
}

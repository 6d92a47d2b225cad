import { DtsError, isDtsError } from '../errors.ts';
import { keySlot, slotTag } from '../redis/cluster-slot.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import type { TargetRouting } from '../redis/target-routing.ts';
import {
  ALL_NODES,
  type Applier,
  type ApplyCommand,
  MarkerApplier,
  type MarkerPosition,
  markerKeyFor,
  parseMarker,
} from './marker-applier.ts';
import { SkipStamps } from './skip-stamps.ts';

/**
 * Applies into a cluster destination, exactly once, without transactions: a cluster runs a transaction
 * only over keys of one slot, and one transaction per slot would cost four commands per command. Each
 * master gets its share of a batch as a plain pipeline ending with `SET <its marker> <replid>:<offset>`;
 * a marker is therefore a position up to which that master holds everything, and whatever follows it may
 * be partly applied.
 *
 * A resume therefore does not replay the stream after the lowest marker: it reads it up to the source's
 * current offset as a catch-up does, and copies the keys written there again at a stamp
 * (`resumeByCatchUp`). Markers are `redis-dts:marker:<task>:<shard>:node:{<tag>}`, the tag one of the
 * master's slots; skip hashes carry the tag of the slot of the keys they describe. Both are found by SCAN
 * on every master, so they are still found after the destination was resharded.
 */
export class ClusterMarkerApplier implements Applier {
  /** What the sync names the skip hash by; each slot's own skip hash replaces it on the way out. */
  readonly skipKey: Buffer;
  readonly markerDb = 0;
  /** A cluster has db 0 only: no SWAPDB can move them. */
  readonly ownKeys: readonly Buffer[] = [];
  readonly resumeByCatchUp = true;
  private readonly routing: TargetRouting;
  private readonly nodes: MarkerApplier[];
  private readonly base: string;
  /** Slots whose skip hash may hold entries. */
  private readonly skipSlots = new Set<number>();
  /**
   * Markers of masters the destination no longer has in that place (it was resharded): they still count
   * for the resume position until every current master has a marker of its own, then they go.
   */
  private staleMarkers: string[] = [];

  private constructor(routing: TargetRouting, nodes: MarkerApplier[], base: string) {
    this.routing = routing;
    this.nodes = nodes;
    this.base = base;
    this.skipKey = Buffer.from(`${base}:skip`);
  }

  static async open(
    routing: TargetRouting,
    o: { taskId: string; shardId: string },
  ): Promise<ClusterMarkerApplier> {
    const topology = routing.topology;
    if (!topology) throw new Error('ClusterMarkerApplier needs a cluster destination');
    const nodes: MarkerApplier[] = [];
    try {
      for (let i = 0; i < routing.nodes.length; i++) {
        const home = Math.min(...topology.masters[i]!.ranges.map(([from]) => from));
        const node = await MarkerApplier.open(routing.nodes[i]!, {
          taskId: o.taskId,
          shardId: `${o.shardId}:node:{${slotTag(home)}}`,
          markerDb: 0,
        });
        nodes.push(node);
        await node.trackMarker();
      }
    } catch (e) {
      for (const n of nodes) n.destroy();
      throw e;
    }
    return new ClusterMarkerApplier(routing, nodes, markerKeyFor(o.taskId, o.shardId));
  }

  /** The lowest marker found on any master; undefined when there is none (the catch-up never finished). */
  async readPosition(): Promise<MarkerPosition | undefined> {
    let low: MarkerPosition | undefined;
    const current = new Set(this.nodes.map((n) => n.markerKey));
    await this.forEachKey(async (key, conn) => {
      if (!key.startsWith(`${this.base}:node:`)) return;
      if (!current.has(key)) this.staleMarkers.push(key);
      const value = await conn.call(['GET', key]);
      if (value === null) return;
      const p = parseMarker(Buffer.isBuffer(value) ? value.toString('latin1') : String(value), key);
      if (!low || p.offset < low.offset) low = p;
    });
    return low;
  }

  async readSkipEntries(): Promise<Buffer[]> {
    const out: Buffer[] = [];
    await this.forEachKey(async (key, conn) => {
      if (!key.endsWith(':skip')) return;
      const reply = await conn.call(['HGETALL', key]);
      if (Array.isArray(reply)) out.push(...(reply as Buffer[]));
      this.skipSlots.add(keySlot(key));
    });
    return out;
  }

  async removeMarker(): Promise<void> {
    await this.forEachKey(async (key, conn) => {
      await conn.call(['UNLINK', key]);
    });
    this.skipSlots.clear();
  }

  async apply(batch: readonly ApplyCommand[], position: MarkerPosition | undefined): Promise<void> {
    const parts = this.nodes.map((): ApplyCommand[] => []);
    let everyNode = false;
    for (const c of batch) {
      if (c.argv[1] === this.skipKey && c.argv.length === 2) {
        // DEL of the skip hash: every slot's that may hold entries.
        for (const slot of this.skipSlots) {
          parts[this.routing.nodeOfSlot(slot)]!.push({ db: 0, argv: [c.argv[0]!, this.slotSkipKey(slot)] });
        }
        this.skipSlots.clear();
        continue;
      }
      const slot = this.slotOf(c);
      if (slot === ALL_NODES) {
        everyNode = true;
        for (const p of parts) p.push(c);
        continue;
      }
      parts[this.routing.nodeOfSlot(slot)]!.push(
        c.argv[1] === this.skipKey ? this.slotSkipCommand(c, slot) : c,
      );
    }
    try {
      if (everyNode && position) {
        // A command for every node (FUNCTION LOAD, FLUSHDB) reaches all of them before any marker passes
        // it: a resume from the lowest marker does not replay it, so no master may miss it.
        await Promise.all(this.nodes.map((n, i) => n.applyUnwrapped(parts[i]!, undefined)));
        await Promise.all(this.nodes.map((n) => n.applyUnwrapped([], position)));
      } else {
        await Promise.all(
          this.nodes.map((n, i) =>
            parts[i]!.length > 0 || position ? n.applyUnwrapped(parts[i]!, position) : undefined,
          ),
        );
      }
    } catch (e) {
      throw slotsMoved(e);
    }
    if (position && this.staleMarkers.length > 0) await this.removeStaleMarkers();
  }

  private async removeStaleMarkers(): Promise<void> {
    const stale = new Set(this.staleMarkers);
    this.staleMarkers = [];
    await this.forEachKey(async (key, conn) => {
      if (stale.has(key)) await conn.call(['UNLINK', key]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.close()));
  }

  destroy(): void {
    for (const n of this.nodes) n.destroy();
  }

  /** A command's slot, or ALL_NODES. Our own writes (re-copies, skip entries) go by the key they name. */
  private slotOf(c: ApplyCommand): number {
    if (c.slot !== undefined) return c.slot;
    const key = c.argv[1];
    if (key === undefined) return ALL_NODES;
    if (key === this.skipKey) {
      return keySlot(SkipStamps.keyOf(c.argv[2]!));
    }
    return keySlot(key);
  }

  /** HSET <skip> <db>:<key> <stamp> into the skip hash of the key's slot. */
  private slotSkipCommand(c: ApplyCommand, slot: number): ApplyCommand {
    const argv = [...c.argv];
    argv[1] = this.slotSkipKey(slot);
    this.skipSlots.add(slot);
    return { db: 0, argv };
  }

  private slotSkipKey(slot: number): Buffer {
    return Buffer.from(`${this.base}:{${slotTag(slot)}}:skip`);
  }

  /** Every key of this task's shard markers on every master (SCAN: they are spread over the slots). */
  private async forEachKey(f: (key: string, conn: RawConnection) => Promise<void>): Promise<void> {
    await Promise.all(
      this.routing.nodes.map(async (ep) => {
        const conn = await RawConnection.open(ep, { clientName: 'redis-dts-markers' });
        try {
          let cursor = '0';
          do {
            const reply = (await conn.call([
              'SCAN',
              cursor,
              'MATCH',
              `${globEscape(this.base)}:*`,
              'COUNT',
              1000,
            ])) as [Buffer, Buffer[]];
            cursor = reply[0].toString('latin1');
            for (const k of reply[1]) await f(k.toString('latin1'), conn);
          } while (cursor !== '0');
        } finally {
          await conn.close().catch(() => conn.destroy());
        }
      }),
    );
  }
}

/** The marker applier for the destination: one server's, or one per master of a cluster. */
export async function openApplier(
  target: RedisEndpoint,
  routing: TargetRouting | undefined,
  o: { taskId: string; shardId: string; markerDb: number },
): Promise<Applier> {
  return routing?.topology ? ClusterMarkerApplier.open(routing, o) : MarkerApplier.open(target, o);
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** A node refusing a key it no longer serves: the destination's slots moved during the task. */
function slotsMoved(e: unknown): unknown {
  if (!isDtsError(e) || !/\b(MOVED|ASK)\b/.test(e.message)) return e;
  return new DtsError(
    'TARGET_SLOTS_MOVED',
    `${e.message} — the destination cluster was resharded or failed over while the task ran`,
    'run the task again: it reads the new slot map and resumes from the markers',
    { cause: e },
  );
}

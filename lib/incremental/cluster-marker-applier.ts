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

const COLON = 0x3a;

/**
 * Exactly-once apply into a cluster destination. A cluster runs a transaction only when all its keys
 * share one slot, so the unit of atomicity is the slot: each batch is split into one transaction per slot,
 * `MULTI; that slot's commands; SET <slot marker> <replid>:<end of its last command>; EXEC`, where the
 * slot marker `redis-dts:marker:<task>:<shard>:{<tag>}` carries a hash tag of that slot (and so does the
 * slot's skip hash, written with each re-copy of one of its keys).
 *
 * Resuming: a slot that never received a command has no marker, so the lowest slot marker cannot be the
 * resume point. Once every transaction of a batch is acknowledged, each node stores the batch's end as
 * its resume position (`…:resume:{<node tag>}`); the stream restarts from the lowest, and each command is
 * skipped when its slot's marker is already at or past its end. Slot markers never move back.
 *
 * Commands for every node (FLUSHDB, FUNCTION LOAD…) run in the transaction of the node's first slot, and
 * split the batch: the slots' transactions before them are sent first, the ones after them next.
 */
export class ClusterMarkerApplier implements Applier {
  /** What the sync names the skip hash by; each slot's own skip hash replaces it on the way out. */
  readonly skipKey: Buffer;
  readonly markerDb = 0;
  /** A cluster has db 0 only: no SWAPDB can move them. */
  readonly ownKeys: readonly Buffer[] = [];
  private readonly routing: TargetRouting;
  private readonly nodes: MarkerApplier[];
  private readonly base: string;
  /** Each node's first slot: where its node-wide commands run. */
  private readonly homeSlots: number[];
  /** Per slot: the end offset of the last command applied in it (-1: none). */
  private readonly slotFloors = new Float64Array(16384).fill(-1);
  /** Slots whose skip hash may hold entries. */
  private readonly skipSlots = new Set<number>();

  private constructor(routing: TargetRouting, nodes: MarkerApplier[], base: string) {
    this.routing = routing;
    this.nodes = nodes;
    this.base = base;
    this.skipKey = Buffer.from(`${base}:skip`);
    const topology = routing.topology!;
    this.homeSlots = topology.masters.map((m) => Math.min(...m.ranges.map(([from]) => from)));
  }

  static async open(
    routing: TargetRouting,
    o: { taskId: string; shardId: string },
  ): Promise<ClusterMarkerApplier> {
    if (!routing.topology) throw new Error('ClusterMarkerApplier needs a cluster destination');
    const nodes: MarkerApplier[] = [];
    try {
      for (let i = 0; i < routing.nodes.length; i++) {
        // The node applier's own marker key is its resume position, in its first slot.
        const home = Math.min(...routing.topology.masters[i]!.ranges.map(([from]) => from));
        nodes.push(
          await MarkerApplier.open(routing.nodes[i]!, {
            taskId: o.taskId,
            shardId: `${o.shardId}:resume:{${slotTag(home)}}`,
            markerDb: 0,
          }),
        );
      }
    } catch (e) {
      for (const n of nodes) n.destroy();
      throw e;
    }
    return new ClusterMarkerApplier(routing, nodes, markerKeyFor(o.taskId, o.shardId));
  }

  /**
   * The lowest resume position found on any node (each is written only once a whole batch is everywhere,
   * so any one is safe; after a reshard they may sit on other nodes than now), and every slot's marker.
   * Undefined when there is none: the catch-up never finished, and is redone.
   */
  async readPosition(): Promise<MarkerPosition | undefined> {
    let low: MarkerPosition | undefined;
    await this.forEachKey(async (key, conn) => {
      if (!key.startsWith(`${this.base}:resume:`)) return this.loadSlotMarker(key, conn);
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
    this.slotFloors.fill(-1);
    this.skipSlots.clear();
  }

  apply(batch: readonly ApplyCommand[], position: MarkerPosition | undefined): Promise<void> {
    const sent: Promise<void>[] = [];
    let groups = new Map<number, ApplyCommand[]>();
    const sendGroups = () => {
      for (const [slot, commands] of groups) sent.push(this.sendSlot(slot, commands, position));
      groups = new Map();
    };
    for (const c of batch) {
      if (c.argv[1] === this.skipKey && c.argv.length === 2) {
        // DEL of the skip hash: every slot's that may hold entries.
        for (const s of this.skipSlots) {
          this.group(groups, s).push({ db: 0, argv: [c.argv[0]!, this.slotSkipKey(s)] });
        }
        this.skipSlots.clear();
        continue;
      }
      const slot = this.slotOf(c);
      if (slot === ALL_NODES) {
        sendGroups();
        for (const home of this.homeSlots) groups.set(home, [c]);
        sendGroups();
        continue;
      }
      this.group(groups, slot).push(c);
    }
    sendGroups();
    // Nodes no command reached still move their resume position (a batch may be all one node's).
    const all = Promise.all(sent).then(async () => {
      if (!position) return;
      await Promise.all(this.nodes.map((n) => n.apply([], position)));
    });
    return all.catch((e: unknown) => {
      throw slotsMoved(e);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.close()));
  }

  destroy(): void {
    for (const n of this.nodes) n.destroy();
  }

  private group(groups: Map<number, ApplyCommand[]>, slot: number): ApplyCommand[] {
    let g = groups.get(slot);
    if (!g) {
      g = [];
      groups.set(slot, g);
    }
    return g;
  }

  /** One slot's share of a batch: its stream commands not yet applied, our writes, and its marker. */
  private sendSlot(
    slot: number,
    commands: ApplyCommand[],
    position: MarkerPosition | undefined,
  ): Promise<void> {
    const floor = this.slotFloors[slot]!;
    const kept: ApplyCommand[] = [];
    let last = -1;
    for (const c of commands) {
      if (c.end !== undefined) {
        if (c.end <= floor) continue;
        last = c.end;
      }
      if (c.argv[1] === this.skipKey) {
        const argv = [...c.argv];
        argv[1] = this.slotSkipKey(slot);
        kept.push({ db: 0, argv });
        this.skipSlots.add(slot);
      } else {
        kept.push(c);
      }
    }
    if (kept.length === 0) return Promise.resolve();
    const marker = position && last >= 0 ? { replid: position.replid, offset: last } : undefined;
    if (marker) this.slotFloors[slot] = last;
    const node = this.routing.nodeOfSlot(slot);
    return this.nodes[node]!.apply(kept, marker, Buffer.from(this.slotMarkerKey(slot)));
  }

  /** A command's slot, or ALL_NODES. Our own writes (re-copies, skip entries) go by the key they name. */
  private slotOf(c: ApplyCommand): number {
    if (c.slot !== undefined) return c.slot;
    const key = c.argv[1];
    if (key === undefined) return ALL_NODES;
    if (key === this.skipKey) {
      const field = c.argv[2];
      return field ? keySlot(field.subarray(field.indexOf(COLON) + 1)) : ALL_NODES;
    }
    return keySlot(key);
  }

  private slotMarkerKey(slot: number): string {
    return `${this.base}:{${slotTag(slot)}}`;
  }

  private slotSkipKey(slot: number): Buffer {
    return Buffer.from(`${this.slotMarkerKey(slot)}:skip`);
  }

  private async loadSlotMarker(key: string, conn: RawConnection): Promise<void> {
    if (!/:\{[0-9a-z]+\}$/.test(key)) return;
    const value = await conn.call(['GET', key]);
    if (value === null) return;
    const p = parseMarker(Buffer.isBuffer(value) ? value.toString('latin1') : String(value), key);
    const slot = keySlot(key);
    this.slotFloors[slot] = Math.max(this.slotFloors[slot]!, p.offset);
  }

  /** Every key of this task's shard markers on every node (SCAN: slot markers are spread over all slots). */
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

/** The marker applier for the destination: one node's, or per slot over a cluster's masters. */
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

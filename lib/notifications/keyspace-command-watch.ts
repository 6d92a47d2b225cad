import { parseInfo } from '../redis/admin-client.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import { RespError } from '../redis/resp.ts';

/** Commands that change whole dbs without one keyspace event per key. */
const WATCHED = ['flushdb', 'flushall', 'swapdb'] as const;
const POLL_MS = 1000;

/**
 * Sees FLUSHDB, FLUSHALL and SWAPDB on a source node through the call counters of INFO commandstats
 * (they emit no per-key keyspace events, so the notification reader cannot learn of them otherwise).
 * A counter that grew, or counters that were reset (CONFIG RESETSTAT could hide a call), is reported.
 * Where INFO commandstats is refused, it says so once and watches nothing: the repair round at cut-over
 * still catches what such a command changed.
 */
export class KeyspaceCommandWatch {
  private readonly endpoint: RedisEndpoint;
  private readonly o: { onChange: (what: string) => void; log: (m: string) => void };
  private conn: RawConnection | undefined;
  private last: Record<string, number> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private polling: Promise<void> | undefined;

  constructor(endpoint: RedisEndpoint, o: { onChange: (what: string) => void; log: (m: string) => void }) {
    this.endpoint = endpoint;
    this.o = o;
  }

  /** Reads the counters once (the baseline), then polls every second. */
  async start(): Promise<void> {
    await this.poll();
    if (this.stopped) return;
    this.timer = setInterval(() => {
      this.polling ??= this.poll().finally(() => {
        this.polling = undefined;
      });
    }, POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.conn?.destroy();
  }

  private async poll(): Promise<void> {
    let counts: Record<string, number>;
    try {
      this.conn ??= await RawConnection.open(this.endpoint, { clientName: 'redis-dts-commandstats' });
      const reply = await this.conn.call(['INFO', 'commandstats']);
      counts = callCounts(Buffer.isBuffer(reply) ? reply.toString() : String(reply));
    } catch (e) {
      if (!(e instanceof RespError)) {
        // The connection, not a refusal: opened again on the next poll.
        this.conn?.destroy();
        this.conn = undefined;
        return;
      }
      this.o.log(
        `${describeEndpoint(this.endpoint)} refused INFO commandstats (${(e as Error).message}): FLUSHDB, ` +
          'FLUSHALL and SWAPDB on the source cannot be seen while the sync runs; the repair round at ' +
          'cut-over (--until caught-up) still corrects what they changed',
      );
      this.stop();
      return;
    }
    const before = this.last;
    this.last = counts;
    if (!before) return;
    const grew = WATCHED.filter((c) => (counts[c] ?? 0) > (before[c] ?? 0));
    const reset = WATCHED.some((c) => (counts[c] ?? 0) < (before[c] ?? 0));
    if (grew.length > 0) this.o.onChange(grew.map((c) => c.toUpperCase()).join(', '));
    else if (reset) this.o.onChange('CONFIG RESETSTAT (which could hide a FLUSHDB)');
  }
}

/** `cmdstat_<name>:calls=N,…` → { name: N } for the watched commands. */
export function callCounts(info: string): Record<string, number> {
  const out: Record<string, number> = {};
  const fields = parseInfo(info);
  for (const c of WATCHED) {
    const m = /calls=(\d+)/.exec(fields[`cmdstat_${c}`] ?? '');
    out[c] = m ? Number(m[1]) : 0;
  }
  return out;
}

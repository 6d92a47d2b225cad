import type { RawConnection } from '../redis/raw-connection.ts';
import { RespError } from '../redis/resp.ts';
import { encodeKeyCommands, HEAD, send } from '../verify/key-commands.ts';
import { chunkReadError } from './stamped-chunk-reader.ts';

/** A batch of keys split by size: the small ones are DUMPed in the chunk, the big ones copied in parts. */
export interface SizedKeys {
  small: Buffer[];
  /** MEMORY USAGE of the small keys together: what their DUMPs hold in flight, roughly (an overestimate). */
  smallBytes: number;
  big: Buffer[];
}

/**
 * Learns the size of keys before they are DUMPed: `MEMORY USAGE k` (sampled, so O(1) per key even for
 * a collection of millions), pipelined on its own connection so it never waits behind the chunks in
 * flight on the read connection.
 *
 * The probe is outside the chunk's transaction and needs no stamp: it only chooses how a key is read,
 * and both ways are exact by themselves. A key DUMPed in the chunk is read at the chunk's stamp, as
 * always. A key copied in parts gets its own stamp, taken after its last read (or, in a re-copy, in a
 * transaction that WATCH proves came before any change to it). A key that grew or shrank between the
 * probe and its read only costs memory or an unneeded copy in parts, never a wrong value.
 */
export class SizeProbe {
  private readonly conn: RawConnection;
  private readonly onUnavailable: (reason: string) => void;
  private available = true;

  /** `onUnavailable`: told once when the source refuses MEMORY USAGE; keys are then all DUMPed whole. */
  constructor(conn: RawConnection, onUnavailable: (reason: string) => void) {
    this.conn = conn;
    this.onUnavailable = onUnavailable;
  }

  async split(keys: readonly Buffer[], inPartsAbove: number): Promise<SizedKeys> {
    if (!this.available || keys.length === 0) return { small: [...keys], smallBytes: 0, big: [] };
    const replies = await send(this.conn, encodeKeyCommands([HEAD.MEMORY_USAGE], keys), keys.length);
    const out: SizedKeys = { small: [], smallBytes: 0, big: [] };
    for (let i = 0; i < keys.length; i++) {
      const r = replies[i];
      if (r instanceof RespError) {
        // The key's slot left this master (a reshard or failover): the caller follows that, as for a DUMP.
        if (r.prefix === 'MOVED' || r.prefix === 'ASK') throw chunkReadError(this.conn, r);
        this.available = false;
        this.onUnavailable(r.message);
        return { small: [...keys], smallBytes: 0, big: [] };
      }
      // nil: the key is gone; the chunk's DUMP finds that out at its stamp.
      const size = typeof r === 'number' ? r : 0;
      if (size > inPartsAbove) out.big.push(keys[i]!);
      else {
        out.small.push(keys[i]!);
        out.smallBytes += size;
      }
    }
    return out;
  }
}

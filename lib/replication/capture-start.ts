import { DtsError } from '../errors.ts';
import { parseInfo } from '../redis/admin-client.ts';
import { classifyRedisError } from '../redis/classify-error.ts';
import type { RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import { RespError } from '../redis/resp.ts';
import { PsyncClient } from './psync-client.ts';
import { replicationProtocolError } from './psync-errors.ts';

export interface CaptureStartResult {
  /** Replication id of the source's history. */
  replid: string;
  /** The source's offset at capture: incremental sync continues with `PSYNC <replid> <offset + 1>`. */
  offset: number;
  /**
   * 'info': read from an existing backlog (no fork); 'psync': from `+FULLRESYNC` (created the backlog);
   * 'checkpoint': captured by an earlier run of the task; 'rdb': none yet (the RDB full sync's snapshot
   * will give it).
   */
  via: 'info' | 'psync' | 'checkpoint' | 'rdb';
}

export interface CaptureStartOptions {
  connectTimeoutMs?: number;
}

/**
 * Records the point the incremental stream will start from (ARCHITECTURE.md "Capture start"), making sure
 * the source keeps its stream from there in a replication backlog.
 *
 * A source with an active backlog (`repl_backlog_active:1`, as on any primary with replicas, and on
 * replicas) already holds it: its `master_replid` / `master_repl_offset` are taken from INFO, and the
 * source is spared a fork. Otherwise `PSYNC ? -1` creates the backlog (and a new replication id); the
 * `+FULLRESYNC <replid> <offset>` reply is the start, and the link is closed without reading the RDB
 * (the source's fork for it is wasted, once). The backlog then lives for `repl-backlog-ttl` (default
 * 3600 s) without replicas, so incremental sync must connect within that time and before
 * `repl-backlog-size` bytes of writes have passed.
 */
export async function captureStart(
  ep: RedisEndpoint,
  opts: CaptureStartOptions = {},
): Promise<CaptureStartResult> {
  const info = await replicationInfo(ep, opts.connectTimeoutMs);
  if (
    info?.repl_backlog_active === '1' &&
    info.master_replid &&
    /^\d+$/.test(info.master_repl_offset ?? '')
  ) {
    return { replid: info.master_replid, offset: Number(info.master_repl_offset), via: 'info' };
  }
  const link = await PsyncClient.connect(ep, {
    rdb: 'discard',
    onCommand: () => undefined,
    connectTimeoutMs: opts.connectTimeoutMs,
  });
  try {
    const { mode, replid, startOffset } = link.result;
    if (mode !== 'fullresync') {
      throw replicationProtocolError(ep, 'psync', `'+CONTINUE' in reply to 'PSYNC ? -1'`);
    }
    return { replid, offset: startOffset, via: 'psync' };
  } finally {
    await link.close();
  }
}

/** INFO replication, or undefined when the user may not run INFO (the PSYNC path still works then). */
async function replicationInfo(
  ep: RedisEndpoint,
  connectTimeoutMs: number | undefined,
): Promise<Record<string, string> | undefined> {
  const conn = await RawConnection.open(ep, { connectTimeoutMs, clientName: 'redis-dts-capture' });
  try {
    const reply = await conn.call(['INFO', 'replication']);
    return parseInfo(Buffer.isBuffer(reply) ? reply.toString('utf8') : String(reply));
  } catch (e) {
    if (e instanceof RespError && e.prefix === 'NOPERM') return undefined;
    throw e instanceof DtsError ? e : classifyRedisError(e, ep, 'INFO');
  } finally {
    conn.destroy();
  }
}

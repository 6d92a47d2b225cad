import { parseInfo } from '../redis/admin-client.ts';
import { describeEndpoint, type RedisEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import { HeartbeatWriter } from './heartbeat.ts';
import type { KeyRecopier } from './key-recopier.ts';

export interface SourceLinkOptions {
  source: RedisEndpoint;
  taskId: string;
  /** A cluster shard: where its master is now (after a failover). */
  resolveSource?: () => Promise<RedisEndpoint>;
  heartbeat?: { prefix: string; intervalMs: number; db: number };
  /** A re-copier reading from this master (made again when the master moves). */
  makeRecopier: (source: RedisEndpoint) => KeyRecopier;
  log?: (message: string) => void;
}

/**
 * Everything an incremental sync does on the source besides reading its stream: the heartbeat, re-copies,
 * offset polls, and following a cluster shard's master when a failover moves it (the stream follows on
 * its own reconnect).
 */
export class SourceLink {
  private readonly o: SourceLinkOptions;
  /** Where the source shard is read: its master, which a cluster failover moves. */
  private current: RedisEndpoint;
  private conn: RawConnection | undefined;
  private following: Promise<void> | undefined;
  private writer: HeartbeatWriter | undefined;
  private copier: KeyRecopier;
  private polling = false;
  /** The source's offset at the last poll, and when it was asked. */
  lastPolled: { offset: number; at: number } | undefined;

  constructor(o: SourceLinkOptions) {
    this.o = o;
    this.current = o.source;
    this.copier = o.makeRecopier(o.source);
  }

  get endpoint(): RedisEndpoint {
    return this.current;
  }

  get recopier(): KeyRecopier {
    return this.copier;
  }

  get heartbeat(): HeartbeatWriter | undefined {
    return this.writer;
  }

  async startHeartbeat(): Promise<void> {
    const o = this.o;
    if (!o.heartbeat) return;
    this.writer = new HeartbeatWriter({ onError: (e) => o.log?.(`heartbeat: ${e.message}`) });
    await this.writer.start(this.current, { taskId: o.taskId, ...o.heartbeat });
  }

  /**
   * A cluster shard's master changed (a failover: our server reports itself a replica, or the link moved).
   * Heartbeats, re-copies and offset polls go to the new master from now on; the stream itself keeps
   * flowing from the demoted one (it relays the new master's history) or moves on its next reconnect.
   */
  follow(): Promise<void> {
    const resolve = this.o.resolveSource;
    if (!resolve) return Promise.resolve();
    if (this.following) return this.following;
    this.following = (async () => {
      const ep = await resolve();
      if (ep.host === this.current.host && ep.port === this.current.port) return;
      this.o.log?.(`the shard's master is now ${describeEndpoint(ep)} (a failover): following it`);
      this.current = ep;
      this.conn?.destroy();
      this.conn = undefined;
      const recopier = this.copier;
      this.copier = this.o.makeRecopier(ep);
      void recopier.close().catch(() => undefined);
      // The old key is the same key on the new master (it replicated there): the new writer takes it over.
      await this.writer?.stop();
      await this.startHeartbeat();
    })()
      .catch((e: Error) => this.o.log?.(`could not follow the shard's new master: ${e.message}`))
      .finally(() => {
        this.following = undefined;
      });
    return this.following;
  }

  /**
   * A re-copy read on a promoted master carries its new replid before the stream shows it: the stamp
   * still counts when that master continues our history (its replid2 is ours), as PSYNC2 does.
   */
  async continuesHistory(replid: string, ours: string): Promise<boolean> {
    if (!this.o.resolveSource) return false;
    const info = await this.infoReplication();
    return info.master_replid === replid && info.master_replid2 === ours;
  }

  async readOffset(): Promise<number | undefined> {
    const info = await this.infoReplication();
    if (info.role === 'slave') void this.follow();
    const offset = Number(info.master_repl_offset);
    return Number.isSafeInteger(offset) ? offset : undefined;
  }

  /** One offset poll at a time; `observe` gets each offset read. */
  poll(observe: (offset: number) => void): void {
    if (this.polling) return;
    this.polling = true;
    const at = Date.now();
    this.readOffset()
      .then((offset) => {
        if (offset === undefined) return;
        this.lastPolled = { offset, at };
        observe(offset);
      })
      .catch(() => {
        // A dropped connection is reopened at the next poll; the stream itself reports a lost source.
        this.conn?.destroy();
        this.conn = undefined;
      })
      .finally(() => {
        this.polling = false;
      });
  }

  /** Waits for a failover being followed to settle (before the link is closed). */
  async settle(): Promise<void> {
    await this.following;
  }

  async close(): Promise<void> {
    await this.writer?.stop();
    await this.copier.close().catch(() => undefined);
    this.conn?.destroy();
  }

  private async infoReplication(): Promise<Record<string, string>> {
    this.conn ??= await RawConnection.open(this.current, { clientName: 'redis-dts-offset' });
    const reply = await this.conn.call(['INFO', 'replication']);
    return parseInfo(Buffer.isBuffer(reply) ? reply.toString('latin1') : String(reply));
  }
}

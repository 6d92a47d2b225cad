import { DtsError } from '../errors.ts';
import type { ApplyCommand } from '../incremental/marker-applier.ts';
import { classifyRedisError } from '../redis/classify-error.ts';
import { describeEndpoint } from '../redis/endpoint.ts';
import { RawConnection } from '../redis/raw-connection.ts';
import { RespError } from '../redis/resp.ts';
import type { TargetRouting } from '../redis/target-routing.ts';

const SELECT = Buffer.from('SELECT');

/**
 * Writes re-copies (RESTORE … REPLACE ABSTTL, DEL) to the destination: each command to the node of its
 * key's slot, one pipeline per node, every node at once, resolving when all are acknowledged. The
 * notification reader keeps one write in flight at a time, so a key's copies land in the order they
 * were read. Any refusal stops the task (the destination then lacks some copies: the message says so).
 */
export class RecopyWriter {
  private readonly routing: TargetRouting;
  private readonly conns = new Map<number, Promise<RawConnection>>();

  constructor(routing: TargetRouting) {
    this.routing = routing;
  }

  async write(commands: readonly ApplyCommand[]): Promise<void> {
    const byNode = new Map<number, ApplyCommand[]>();
    for (const c of commands) {
      const node = this.routing.nodes.length === 1 ? 0 : this.routing.nodeOf(c.argv[1]!);
      const list = byNode.get(node);
      if (list) list.push(c);
      else byNode.set(node, [c]);
    }
    await Promise.all([...byNode].map(([node, list]) => this.writeTo(node, list)));
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled(this.conns.values());
    await Promise.all(
      all.map((r) => (r.status === 'fulfilled' ? r.value.close().catch(() => undefined) : 0)),
    );
    this.conns.clear();
  }

  private async writeTo(node: number, list: readonly ApplyCommand[]): Promise<void> {
    const conn = await this.connection(node);
    const argvs: Buffer[][] = [];
    let db: number | undefined;
    for (const c of list) {
      if (c.db !== db) {
        argvs.push([SELECT, Buffer.from(String(c.db))]);
        db = c.db;
      }
      argvs.push(c.argv);
    }
    let replies: Awaited<ReturnType<RawConnection['pipeline']>>;
    try {
      replies = await conn.pipeline(argvs);
    } catch (e) {
      this.conns.delete(node);
      conn.destroy();
      throw classifyRedisError(e, conn.endpoint, 're-copying changed keys');
    }
    for (let i = 0; i < replies.length; i++) {
      const r = replies[i];
      if (!(r instanceof RespError)) continue;
      const key = argvs[i]![1]?.toString('latin1').slice(0, 60) ?? '';
      throw new DtsError(
        'RECOPY_REFUSED',
        `${describeEndpoint(conn.endpoint)} refused ${argvs[i]![0]!.toString()} of key ${JSON.stringify(key)} ` +
          `(${r.message}); the destination lacks this and later changes`,
        'fix the cause on the destination (memory, ACL, read-only), then run the task again: it resumes ' +
          'with a repair round that copies what differs',
      );
    }
  }

  private connection(node: number): Promise<RawConnection> {
    let c = this.conns.get(node);
    if (!c) {
      c = RawConnection.open(this.routing.nodes[node]!, { clientName: 'redis-dts-recopy-write' });
      c.catch(() => this.conns.delete(node));
      this.conns.set(node, c);
    }
    return c;
  }
}

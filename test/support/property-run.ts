import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RawConnection } from '../../lib/redis/raw-connection.ts';
import { RespError, type RespValue } from '../../lib/redis/resp.ts';
import { parseRedisUrl } from '../../lib/redis/url.ts';
import { startCli, syncArgs, watchCli } from './cli.ts';
import {
  CommandGenerator,
  type GeneratedCall,
  LIBRARIES,
  PROPERTY_DBS,
  parseCommandDocs,
  SCRIPTS,
} from './command-generator.ts';
import { compareServers } from './compare.ts';
import { startRedis } from './redis-server.ts';
import { seedManyKeys } from './seed.ts';

export interface PropertyRunOptions {
  /** Generated calls in all (a MULTI block counts as one). */
  commands: number;
  seed: number;
  /** Both servers' binary (default the system redis-server; it must have COMMAND DOCS: 7.0+). */
  binary?: string;
  /** Keys seeded per db before the sync, so the full sync lasts a while (default 3000). */
  seedKeys?: number;
  /** Share of the calls made before the incremental phase starts (during the full sync and catch-up). */
  beforeIncremental?: number;
  log?: (line: string) => void;
}

export interface PropertyRunResult {
  seed: number;
  /** Calls sent, and those the source accepted (only they reach the stream). */
  sent: number;
  accepted: number;
  /** Accepted calls by command name. */
  acceptedBy: Record<string, number>;
  /** Commands generated but never accepted in this run. */
  neverAccepted: string[];
  exitCode: number | null;
  /** Equal to the destination: the source itself, or (upstreamGap) the native replica, which differs from it too. */
  equal: boolean;
  upstreamGap?: boolean;
  /** The comparison summary, or the CLI output when the sync failed. */
  report: string;
  seconds: number;
}

const PIPELINE = 64;

/**
 * The replication-stream property: calls of every write command, generated from the source's COMMAND
 * DOCS, run against the source while a real `redis-dts sync` (full + incremental, until caught up)
 * copies it; the sync must end cleanly with DEBUG DIGEST (and key by key) equal to the source, or to a
 * native replica where Redis' own replication leaves the replica different too. The seed reproduces the
 * call sequence (not its interleaving with the sync).
 */
export async function runReplicationProperty(o: PropertyRunOptions): Promise<PropertyRunResult> {
  const started = Date.now();
  const log = o.log ?? (() => undefined);
  const source = await startRedis({
    args: ['--repl-backlog-size', '256mb', '--stream-node-max-entries', '8'],
    ...(o.binary ? { binary: o.binary } : {}),
  });
  const target = await startRedis(o.binary ? { binary: o.binary } : {});
  // The reference (ARCHITECTURE.md): what Redis itself does not replicate, a native replica lacks too.
  const replica = await startRedis(o.binary ? { binary: o.binary } : {});
  const state = mkdtempSync(join(tmpdir(), 'redis-dts-property-'));
  const admin = new Redis(source.url);
  const conn = await RawConnection.open(parseRedisUrl(source.url, 'source'));
  const blocking = new BlockingPool(source.url);
  const stats = {
    sent: 0,
    accepted: 0,
    acceptedBy: {} as Record<string, number>,
    generated: new Set<string>(),
  };
  try {
    const docs = parseCommandDocs(await admin.call('COMMAND', 'DOCS'), await admin.call('COMMAND'));
    await replica.cli('REPLICAOF', source.host, String(source.port));
    await until(async () => (await replica.cli('INFO', 'replication')).includes('master_link_status:up'));
    for (const lib of LIBRARIES) await admin.call('FUNCTION', 'LOAD', 'REPLACE', lib);
    for (const s of SCRIPTS) await admin.call('SCRIPT', 'LOAD', s.body);
    for (const db of PROPERTY_DBS) {
      await seedManyKeys(source.url, { db, count: o.seedKeys ?? 3000, mixed: true, prefix: `seed:${db}:` });
    }
    const generator = new CommandGenerator(docs, o.seed);
    // --verify off: the comparison below is stricter (DEBUG DIGEST, key by key) and knows the native replica,
    // while the task's Verify would fail the run on a gap of Redis' own replication.
    const cli = watchCli(
      startCli(syncArgs(source.url, target.url, state, ['--until', 'caught-up', '--verify', 'off'])),
    );
    let incremental = false;
    void cli.until('incremental sync: applying changes').then(
      () => {
        incremental = true;
      },
      () => undefined,
    );
    const before = Math.floor(o.commands * (o.beforeIncremental ?? 0.3));
    let db: number | undefined;
    let sent = 0;
    while (sent < o.commands) {
      // The first share runs while the full sync and its catch-up read the source; then wait for the
      // incremental phase (or the CLI's end, which the checks below report).
      if (sent >= before && !incremental) {
        await Promise.race([cli.until('incremental sync: applying changes'), cli.done]).catch(
          () => undefined,
        );
        incremental = true;
      }
      const batch: { call: GeneratedCall; at: number }[] = [];
      const commands: (string | Buffer)[][] = [];
      while (batch.length < PIPELINE && sent < o.commands) {
        const call = generator.next();
        sent++;
        stats.generated.add(call.label);
        if (call.blocking) {
          stats.sent++;
          blocking.send(call, stats);
          continue;
        }
        if (call.db !== db) {
          commands.push(['SELECT', String(call.db)]);
          db = call.db;
        }
        batch.push({ call, at: commands.length });
        if (call.transaction) {
          commands.push(['MULTI'], ...call.transaction.map((c) => c.argv), ['EXEC']);
        } else {
          commands.push(call.argv);
        }
      }
      const replies = await conn.pipeline(commands);
      count(batch, replies, stats);
      if (sent % 20_000 < PIPELINE) log(`${sent} of ${o.commands} calls sent, ${stats.accepted} accepted`);
    }
    await blocking.close();
    log(`all ${sent} calls sent (${stats.accepted} accepted); waiting for the sync to catch up`);
    const r = await cli.done;
    const acceptedNames = new Set(Object.keys(stats.acceptedBy));
    const result = {
      seed: o.seed,
      sent: stats.sent,
      accepted: stats.accepted,
      acceptedBy: stats.acceptedBy,
      neverAccepted: [...stats.generated].filter((n) => !acceptedNames.has(n)).sort(),
      exitCode: r.code,
      seconds: (Date.now() - started) / 1000,
    };
    if (r.code !== 0) return { ...result, equal: false, report: cli.output() };
    const comparison = await compareServers(source.url, target.url);
    if (comparison.equal) return { ...result, equal: true, report: comparison.summary() };
    // compareServers made the source expire what was due; the replica has applied it once at its offset.
    const offset = Number(/master_repl_offset:(\d+)/.exec(await source.cli('INFO', 'replication'))?.[1]);
    await until(async () => {
      const m = /slave_repl_offset:(\d+)/.exec(await replica.cli('INFO', 'replication'));
      return Number(m?.[1]) >= offset;
    });
    const reference = await compareServers(replica.url, target.url);
    const report = reference.equal
      ? `equal to the native replica, which differs from the source the same way (a gap of Redis' own replication): ${comparison.summary()}`
      : `${comparison.summary()}\nagainst the native replica: ${reference.summary()}`;
    return { ...result, equal: reference.equal, upstreamGap: reference.equal, report };
  } finally {
    conn.destroy();
    blocking.destroy();
    admin.disconnect();
    await source.stop();
    await target.stop();
    await replica.stop();
    rmSync(state, { recursive: true, force: true });
  }
}

type Stats = { sent: number; accepted: number; acceptedBy: Record<string, number> };

/** Counts the replies of `batch`; `at`: the index of each call's (first) command in the pipeline. */
function count(batch: { call: GeneratedCall; at: number }[], replies: RespValue[], stats: Stats): void {
  for (const { call, at } of batch) {
    stats.sent++;
    if (!call.transaction) {
      if (!(replies[at] instanceof RespError)) accept(stats, call.label);
      continue;
    }
    const exec = replies[at + 1 + call.transaction.length];
    if (!Array.isArray(exec)) continue;
    accept(stats, 'MULTI');
    exec.forEach((v, k) => {
      if (!(v instanceof RespError)) accept(stats, call.transaction![k]!.label);
    });
  }
}

function accept(stats: Stats, label: string): void {
  stats.accepted++;
  stats.acceptedBy[label] = (stats.acceptedBy[label] ?? 0) + 1;
}

/**
 * Blocking calls, each on its own connection (one per db at most at a time): a later push from the
 * main pipeline serves them, or their short timeout ends them. A busy db's blocking call is skipped.
 */
class BlockingPool {
  private readonly url: string;
  private readonly conns = new Map<number, Promise<RawConnection>>();
  private readonly busy = new Map<number, Promise<void>>();

  constructor(url: string) {
    this.url = url;
  }

  send(call: GeneratedCall, stats: Stats): void {
    if (this.busy.has(call.db)) return;
    let conn = this.conns.get(call.db);
    if (!conn) {
      conn = RawConnection.open(parseRedisUrl(this.url, 'source'), { db: call.db });
      this.conns.set(call.db, conn);
    }
    const done = conn
      .then((c) => c.call(call.argv))
      .then(
        (v) => {
          if (v !== null) accept(stats, call.label);
        },
        () => undefined,
      )
      .finally(() => this.busy.delete(call.db));
    this.busy.set(call.db, done);
  }

  async close(): Promise<void> {
    await Promise.all(this.busy.values());
  }

  destroy(): void {
    for (const c of this.conns.values())
      void c.then(
        (x) => x.destroy(),
        () => undefined,
      );
  }
}

async function until(check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('the native replica did not catch up with the source');
    await new Promise((r) => setTimeout(r, 50));
  }
}

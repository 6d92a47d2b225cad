import { RawConnection } from '../../lib/redis/raw-connection.ts';
import { RespError } from '../../lib/redis/resp.ts';
import { parseRedisUrl } from '../../lib/redis/url.ts';
import { PsyncClient } from '../../lib/replication/psync-client.ts';
import type { RdbEntry, RdbKeyEntry } from '../../lib/replication/rdb/rdb-parser.ts';
import { type RdbSnapshot, type RdbSource, readRdbSnapshot } from '../../lib/replication/rdb/rdb-snapshot.ts';
import { restoreRefusal } from '../../lib/replication/rdb/restore-refusal.ts';

export interface RdbCopy {
  snapshot: RdbSnapshot;
  /** Keys per db as handed over by the reader. */
  keysPerDb: Record<number, number>;
  /** Function libraries restored. */
  functions: number;
}

const BATCH = 200;

/**
 * Copies the source into the destination through its replication RDB: every key the reader yields is
 * written with `RESTORE key <expireAtMs|0> payload REPLACE ABSTTL` in its db (pipelined, a batch at a
 * time, the link held while a batch is in flight), every function library with FUNCTION RESTORE. The
 * first refused RESTORE ends the copy with the reader's named error (restore-refusal.ts).
 */
export async function copyThroughRdb(
  sourceUrl: string,
  destinationUrl: string,
  opts: { maxValueBytes?: number } = {},
): Promise<RdbCopy> {
  const destination = parseRedisUrl(destinationUrl, 'target');
  const connections = new Map<number, Promise<RawConnection>>();
  const connection = (db: number) => {
    let c = connections.get(db);
    if (!c) {
      c = RawConnection.open(destination, { db });
      connections.set(db, c);
    }
    return c;
  };
  const destinationVersion = await connection(0)
    .then((c) => c.call(['INFO', 'server']))
    .then((info) => /redis_version:([^\r\n]+)/.exec(String(info))?.[1]);
  let batch: RdbKeyEntry[] = [];
  const functions: RdbEntry[] = [];
  const keysPerDb: Record<number, number> = {};
  let source: RdbSource = { rdbVersion: 0, serverVersion: undefined };

  const flush = async (entries: RdbKeyEntry[]) => {
    const byDb = new Map<number, RdbKeyEntry[]>();
    for (const e of entries) byDb.set(e.db, [...(byDb.get(e.db) ?? []), e]);
    for (const [db, list] of byDb) {
      const conn = await connection(db);
      const replies = await conn.pipeline(
        list.map((e) => ['RESTORE', e.key, e.expireAtMs ?? 0, e.payload, 'REPLACE', 'ABSTTL']),
      );
      replies.forEach((reply, i) => {
        if (reply instanceof RespError) {
          const { key } = list[i]!;
          throw restoreRefusal(reply.message, {
            key,
            db,
            rdbVersion: source.rdbVersion,
            sourceVersion: source.serverVersion,
            destinationVersion,
          });
        }
      });
    }
  };

  try {
    const snapshot = await readRdbSnapshot(parseRedisUrl(sourceUrl, 'source'), {
      maxValueBytes: opts.maxValueBytes,
      onEntry: (entry, about) => {
        source = about;
        if (entry.kind === 'function') {
          functions.push(entry);
          return undefined;
        }
        keysPerDb[entry.db] = (keysPerDb[entry.db] ?? 0) + 1;
        batch.push(entry);
        if (batch.length < BATCH) return undefined;
        const full = batch;
        batch = [];
        return flush(full);
      },
    });
    await flush(batch);
    const conn = await connection(0);
    for (const f of functions) {
      const reply = await conn.call(['FUNCTION', 'RESTORE', f.payload, 'REPLACE']);
      if (reply instanceof RespError) throw new Error(`FUNCTION RESTORE failed: ${reply.message}`);
    }
    return { snapshot, keysPerDb, functions: functions.length };
  } finally {
    for (const c of connections.values()) await c.then((conn) => conn.close()).catch(() => undefined);
  }
}

/** The RDB payload a replica of this source receives, whole in memory (for small sources and benchmarks). */
export async function receiveRawRdb(sourceUrl: string): Promise<Buffer> {
  const pieces: Buffer[] = [];
  let link: PsyncClient | undefined;
  await new Promise<void>((resolve, reject) => {
    PsyncClient.connect(parseRedisUrl(sourceUrl, 'source'), {
      rdb: (chunk) => pieces.push(Buffer.from(chunk)),
      onRdbEnd: () => resolve(),
      onCommand: () => undefined,
      onClose: (e) => e && reject(e),
    }).then((c) => {
      link = c;
    }, reject);
  });
  await link?.close();
  return Buffer.concat(pieces);
}

import type { RedisEndpoint } from '../../redis/endpoint.ts';
import { PsyncClient } from '../psync-client.ts';
import { type RdbEntry, RdbParser, type RdbSummary } from './rdb-parser.ts';

export interface RdbSnapshotOptions {
  /**
   * Each key and function library, in RDB order. Returning a promise holds the link (no more RDB is
   * read after the current socket piece) until it settles; a rejection ends the snapshot with its error.
   */
  onEntry: (entry: RdbEntry) => undefined | Promise<unknown>;
  /** See RdbParserOptions.maxValueBytes. */
  maxValueBytes?: number;
  connectTimeoutMs?: number;
  readTimeoutMs?: number;
}

export interface RdbSnapshot extends RdbSummary {
  /** From `+FULLRESYNC <replid> <offset>`: the snapshot is the dataset at this replication offset. */
  replid: string;
  offset: number;
  /** True when the master streamed the RDB diskless (`$EOF:` framing). */
  diskless: boolean;
}

/**
 * Takes the source's RDB the way a new replica does (`REPLCONF capa eof capa psync2`, `PSYNC ? -1`,
 * `+FULLRESYNC`, the RDB disk-based or diskless) and hands every key over as a RESTORE payload.
 * The link closes after the RDB: continuing incrementally on it is not built yet.
 */
export async function readRdbSnapshot(ep: RedisEndpoint, opts: RdbSnapshotOptions): Promise<RdbSnapshot> {
  let client: PsyncClient | undefined;
  let holding: Promise<unknown> | undefined;
  let failed: ((e: unknown) => void) | undefined;
  let finished: ((s: RdbSnapshot) => void) | undefined;
  const done = new Promise<RdbSnapshot>((resolve, reject) => {
    finished = resolve;
    failed = reject;
  });
  const parser = new RdbParser({
    maxValueBytes: opts.maxValueBytes,
    onEntry: (entry) => {
      const p = opts.onEntry(entry);
      if (p) holding = p;
    },
  });
  const hold = () => {
    const p = holding;
    if (!p || !client) return;
    holding = undefined;
    client.pause();
    p.then(
      () => {
        if (!holding) client?.resume();
      },
      (e: unknown) => {
        void client?.close();
        failed?.(e);
      },
    );
  };

  client = await PsyncClient.connect(ep, {
    connectTimeoutMs: opts.connectTimeoutMs,
    readTimeoutMs: opts.readTimeoutMs,
    rdb: (chunk) => {
      parser.push(chunk);
      hold();
    },
    onRdbEnd: ({ diskless }) => {
      const summary = parser.end();
      const { replid, startOffset } = client!.result;
      const last = holding ?? Promise.resolve();
      holding = undefined;
      client!.pause();
      last.then(
        async () => {
          await client!.close();
          finished?.({ ...summary, replid, offset: startOffset, diskless });
        },
        (e: unknown) => {
          void client!.close();
          failed?.(e);
        },
      );
    },
    onCommand: () => undefined,
    onClose: (err) => {
      if (err) failed?.(err);
    },
  });
  return done;
}

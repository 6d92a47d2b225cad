import type { RedisEndpoint } from '../../redis/endpoint.ts';
import { HeldLink, type LinkDispatch } from '../held-link.ts';
import { PsyncClient } from '../psync-client.ts';
import {
  type RdbEntry,
  type RdbOversizedKey,
  RdbParser,
  type RdbRawKey,
  type RdbSummary,
} from './rdb-parser.ts';

export interface RdbSnapshotOptions {
  /**
   * Each key and function library, in RDB order. Returning a promise holds the link (no more RDB is
   * read after the current socket piece) until it settles; a rejection ends the snapshot with its error.
   */
  onEntry: (entry: RdbEntry, source: RdbSource) => undefined | Promise<unknown>;
  /** Keys as raw RDB bytes instead of entries (see RdbParserOptions.onRawKey); may hold the link the same way. */
  onRawKey?: (key: RdbRawKey, source: RdbSource) => undefined | Promise<unknown>;
  /** See RdbParserOptions.onOversized. */
  onOversized?: (key: RdbOversizedKey) => void;
  /** See RdbParserOptions.maxValueBytes. */
  maxValueBytes?: number;
  connectTimeoutMs?: number;
  readTimeoutMs?: number;
  /**
   * Keep the link after the RDB, paused before its first command, and return it as `link` (the caller
   * must take it over or release it). Without: the link closes after the RDB.
   */
  holdLink?: boolean;
}

/** What the RDB has said about its writer so far (its header and AUX fields come before any key). */
export interface RdbSource {
  readonly rdbVersion: number;
  readonly serverVersion: string | undefined;
}

export interface RdbSnapshot extends RdbSummary {
  /** From `+FULLRESYNC <replid> <offset>`: the snapshot is the dataset at this replication offset. */
  replid: string;
  offset: number;
  /** True when the master streamed the RDB diskless (`$EOF:` framing). */
  diskless: boolean;
  /** With holdLink: the link, paused at `offset`. */
  link?: HeldLink;
}

/**
 * Takes the source's RDB the way a new replica does (`REPLCONF capa eof capa psync2`, `PSYNC ? -1`,
 * `+FULLRESYNC`, the RDB disk-based or diskless) and hands every key over as a RESTORE payload.
 * The link closes after the RDB, or with holdLink is handed back for the stream that follows it.
 */
export async function readRdbSnapshot(ep: RedisEndpoint, opts: RdbSnapshotOptions): Promise<RdbSnapshot> {
  let client: PsyncClient | undefined;
  let settle: { resolve: (s: RdbSnapshot) => void; reject: (e: unknown) => void } | undefined;
  const done = new Promise<RdbSnapshot>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const fail = (e: unknown) => {
    settle?.reject(e);
    settle = undefined;
    void client?.close();
  };
  /** Promises returned by onEntry and not settled yet; the link stays paused while there are any. */
  let unsettled = 0;
  let whenSettled: (() => void) | undefined;
  const hold = (p: undefined | Promise<unknown>) => {
    if (!p) return;
    unsettled++;
    // Every promise gets its handler at once: an early one that rejects must end the snapshot.
    p.then(() => {
      if (--unsettled === 0) whenSettled?.();
    }, fail);
  };
  const onRawKey = opts.onRawKey;
  const parser = new RdbParser({
    maxValueBytes: opts.maxValueBytes,
    onEntry: (entry) => hold(opts.onEntry(entry, parser)),
    ...(onRawKey ? { onRawKey: (key: RdbRawKey) => hold(onRawKey(key, parser)) } : {}),
    ...(opts.onOversized ? { onOversized: opts.onOversized } : {}),
  });
  const afterSettled = (then: () => void) => {
    if (unsettled === 0) return then();
    client?.pause();
    whenSettled = () => {
      whenSettled = undefined;
      then();
    };
  };

  const dispatch: LinkDispatch = { to: undefined };
  client = await PsyncClient.connect(ep, {
    connectTimeoutMs: opts.connectTimeoutMs,
    readTimeoutMs: opts.readTimeoutMs,
    rdb: (chunk) => {
      parser.push(chunk);
      afterSettled(() => client?.resume());
    },
    onRdbEnd: ({ diskless }) => {
      const summary = parser.end();
      const { replid, startOffset } = client!.result;
      client!.pause();
      afterSettled(() => {
        const s = settle;
        settle = undefined;
        const result = { ...summary, replid, offset: startOffset, diskless };
        if (opts.holdLink) {
          s?.resolve({ ...result, link: new HeldLink(client!, replid, startOffset, dispatch) });
          return;
        }
        void client!.close().then(() => s?.resolve(result));
      });
    },
    onCommand: (argv, end) => {
      // Paused at the RDB's end until someone takes the link: a command before that would be lost.
      if (!dispatch.to) throw new Error('readRdbSnapshot: a command arrived before the link was handed over');
      dispatch.to.onCommand(argv, end);
    },
    onClose: (err) => {
      if (dispatch.to) dispatch.to.onClose(err);
      else if (err) fail(err);
    },
  });
  return done;
}

import type { PsyncClient } from './psync-client.ts';

/** Where a held link's stream goes once someone takes it over. */
export interface LinkHandlers {
  onCommand: (argv: Buffer[], endOffset: number) => void;
  onClose: (err: Error | undefined) => void;
}

/**
 * A replication link whose RDB has been read, paused right before its first command: the stream from
 * `offset` (the FULLRESYNC offset) is still in the master's buffers for it. Handing it to the
 * incremental sync continues on the same connection, so nothing has to survive in the source's backlog
 * while the snapshot was being written (which a small repl-backlog-size would not hold).
 */
export class HeldLink {
  readonly client: PsyncClient;
  readonly replid: string;
  readonly offset: number;
  private handlers: LinkHandlers;
  private closedWith: { err: Error | undefined } | undefined;
  private taken = false;

  /** `client` must route its callbacks through `dispatch` (see readRdbSnapshot). */
  constructor(client: PsyncClient, replid: string, offset: number, dispatch: LinkDispatch) {
    this.client = client;
    this.replid = replid;
    this.offset = offset;
    this.handlers = {
      onCommand: () => {
        throw new Error('HeldLink: a command arrived before the link was taken over');
      },
      onClose: (err) => {
        this.closedWith = { err };
      },
    };
    dispatch.to = {
      onCommand: (argv, end) => this.handlers.onCommand(argv, end),
      onClose: (err) => this.handlers.onClose(err),
    };
  }

  /** Not yet taken over or released. */
  get available(): boolean {
    return !this.taken;
  }

  /**
   * Routes the stream to `handlers` and resumes reading. Once only. A link that dropped while held
   * reports it to the new owner at once, so it reconnects from `offset` like after any drop.
   */
  take(handlers: LinkHandlers): PsyncClient {
    if (this.taken) throw new Error('HeldLink: taken twice');
    this.taken = true;
    this.handlers = handlers;
    const closed = this.closedWith;
    // After the caller holds the client, as with a drop at any other time.
    if (closed)
      setImmediate(() => handlers.onClose(closed.err ?? new Error('the held replication link closed')));
    else this.client.resume();
    return this.client;
  }

  /** Ends the link when nobody takes it (a full-only task, or a failure before the incremental sync). */
  async release(): Promise<void> {
    if (this.taken) return;
    this.taken = true;
    this.handlers = { onCommand: () => undefined, onClose: () => undefined };
    await this.client.close();
  }
}

/** The indirection a PsyncClient's callbacks go through while its link may change hands. */
export interface LinkDispatch {
  to: LinkHandlers | undefined;
}

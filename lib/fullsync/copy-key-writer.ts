import type { ChainableCommander, Redis } from 'ioredis';

export type Arg = Buffer | string;

/** RESP framing per argument (`$<len>\r\n…\r\n`), rounded up: keeps the estimate on the safe side. */
const ARG_OVERHEAD = 16;

export function argBytes(arg: Arg): number {
  return (typeof arg === 'string' ? Buffer.byteLength(arg) : arg.length) + ARG_OVERHEAD;
}

/** Where a copier's commands go: a PartWriter, or a list (a logical chunk's stream, see copy-key-stream.ts). */
export interface CommandSink {
  send(command: string, args: Arg[]): Promise<void>;
  sendVariadic(command: string, head: Arg[], items: Arg[][]): Promise<void>;
}

/**
 * Pipelines write commands to the destination in batches of at most `maxBatchBytes` / `maxBatchCommands`,
 * with one batch in flight while the next is being filled (source reads overlap destination writes, and
 * memory stays bounded to about two batches). The first error reply fails the copy.
 */
export class PartWriter implements CommandSink {
  readonly #target: Redis;
  readonly #maxBatchBytes: number;
  readonly #maxBatchCommands: number;
  readonly #maxCommandBytes: number;
  #pipeline: ChainableCommander | undefined;
  #batchBytes = 0;
  #batchCommands = 0;
  #inflight: Promise<void> | undefined;

  constructor(target: Redis, maxCommandBytes: number, maxBatchCommands: number) {
    this.#target = target;
    this.#maxCommandBytes = maxCommandBytes;
    this.#maxBatchBytes = maxCommandBytes;
    this.#maxBatchCommands = Math.max(1, maxBatchCommands);
  }

  /** Queues one command; waits only when a full batch has to wait for the previous one. */
  async send(command: string, args: Arg[]): Promise<void> {
    this.#pipeline ??= this.#target.pipeline();
    this.#pipeline.callBuffer(command, args);
    this.#batchCommands++;
    for (const a of args) this.#batchBytes += argBytes(a);
    if (this.#batchBytes >= this.#maxBatchBytes || this.#batchCommands >= this.#maxBatchCommands) {
      await this.#flush();
    }
  }

  /**
   * Queues `command head… item…` as few commands as keep each under maxCommandBytes. An item (e.g. a field
   * and its value) is never split; one larger than the budget goes alone in its command, since Redis limits
   * each argument (proto-max-bulk-len), not the command, and no command can write an element in parts.
   */
  async sendVariadic(command: string, head: Arg[], items: Arg[][]): Promise<void> {
    const headBytes = head.reduce((n, a) => n + argBytes(a), 0);
    let args: Arg[] = [];
    let bytes = headBytes;
    for (const item of items) {
      const itemBytes = item.reduce((n, a) => n + argBytes(a), 0);
      if (args.length > 0 && bytes + itemBytes > this.#maxCommandBytes) {
        await this.send(command, [...head, ...args]);
        args = [];
        bytes = headBytes;
      }
      args.push(...item);
      bytes += itemBytes;
    }
    if (args.length > 0) await this.send(command, [...head, ...args]);
  }

  /** Sends what is queued and waits for every reply. */
  async drain(): Promise<void> {
    await this.#flush();
    await this.#inflight;
  }

  /** Waits for the batch in flight, ignoring its outcome, and drops what is queued (cleanup after a failure). */
  async abandon(): Promise<void> {
    this.#pipeline = undefined;
    await this.#inflight?.catch(() => undefined);
  }

  async #flush(): Promise<void> {
    const pipeline = this.#pipeline;
    this.#pipeline = undefined;
    this.#batchBytes = 0;
    this.#batchCommands = 0;
    await this.#inflight;
    if (!pipeline) return;
    const sent = pipeline.exec().then((replies) => {
      for (const [err] of replies ?? []) if (err) throw err;
    });
    // Awaited by the next flush or drain; this only keeps it from counting as unhandled meanwhile.
    sent.catch(() => undefined);
    this.#inflight = sent;
  }
}

import { totalmem } from 'node:os';

/** Set by the stack on each Lambda and the replicator: its memory less the runtime's own (infra/). */
export const MEMORY_BUDGET_ENV = 'REDIS_DTS_MEMORY_BUDGET';

const MB = 1024 * 1024;
/** Locally and wherever nothing says otherwise: enough for big chunks, small beside a workstation. */
const LOCAL_DEFAULT = 512 * MB;
/** Smallest budget worth running with: the in-parts pages (8 MB) and a chunk must fit. */
export const MIN_MEMORY_BUDGET = 16 * MB;

/**
 * The bytes of data one process may hold for the copy, the verify and the re-copies together: DUMP
 * payloads read and not yet acknowledged, pages of a key copied or compared in parts, verify batches.
 * The process's own baseline (Node, the AWS SDK, the local DynamoDB) comes on top.
 *
 * How it is shared out:
 * - a value whose size (MEMORY USAGE, before DUMP) exceeds `inPartsAbove` (a sixteenth) is copied and
 *   compared in parts: its DUMP would be held about three times (the reply, the RESTORE command, the
 *   socket), and several chunks are in flight;
 * - DUMP payloads in flight, over every unit of the process, stay under `inFlightBytes` (a quarter):
 *   `reserve` waits for earlier chunks to be acknowledged; the RESTORE commands encoded from them are
 *   bounded by the same amount in the writers;
 * - keys copied in parts go one at a time per process (`oneBigAtATime`), each holding a few pages of
 *   `partBytes` (a thirty-second, at most 8 MB): the read page, ioredis' parser pool (up to three times
 *   the largest reply) and two write batches.
 */
export class MemoryBudget {
  readonly bytes: number;
  readonly inPartsAbove: number;
  readonly inFlightBytes: number;
  /** Pages of a key copied in parts: a read page and two write batches of this size. */
  readonly partBytes: number;
  private reserved = 0;
  private waiters: (() => void)[] = [];
  private bigTail: Promise<unknown> = Promise.resolve();

  constructor(bytes: number) {
    this.bytes = Math.max(MIN_MEMORY_BUDGET, Math.floor(bytes));
    this.inPartsAbove = Math.floor(this.bytes / 16);
    this.inFlightBytes = Math.floor(this.bytes / 4);
    this.partBytes = Math.min(8 * MB, Math.floor(this.bytes / 32));
  }

  /**
   * Waits until `bytes` more fit in flight, then holds them until the returned release is called. A
   * reservation larger than the whole share is let through alone rather than waiting forever.
   */
  async reserve(bytes: number): Promise<() => void> {
    while (this.reserved > 0 && this.reserved + bytes > this.inFlightBytes) {
      await new Promise<void>((r) => this.waiters.push(r));
    }
    this.reserved += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.reserved -= bytes;
      const w = this.waiters;
      this.waiters = [];
      for (const r of w) r();
    };
  }

  /** Runs `copy` after every big copy queued before it: big values are never held side by side. */
  oneBigAtATime<T>(copy: () => Promise<T>): Promise<T> {
    const run = this.bigTail.then(copy, copy);
    this.bigTail = run.catch(() => undefined);
    return run;
  }
}

/** The budget of a worker with `totalMiB` of memory of which its runtime and code take `baselineMiB`. */
export function budgetForMemory(totalMiB: number, baselineMiB: number): number {
  return Math.max(MIN_MEMORY_BUDGET, (totalMiB - baselineMiB) * MB);
}

const budgets = new Map<number, MemoryBudget>();

/**
 * The process's budget of `bytes`: one pool shared by every unit, verify and re-copy of the process
 * (locally the state machine runs several units at once in one process; on AWS each Lambda is its own).
 */
export function processMemoryBudget(bytes: number): MemoryBudget {
  let b = budgets.get(bytes);
  if (!b) {
    b = new MemoryBudget(bytes);
    budgets.set(bytes, b);
  }
  return b;
}

/** The spec's `limits.memoryBudget`, else the environment's (the stack's), else the local default. */
export function resolveMemoryBudget(
  spec: number | string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): number {
  const fromSpec = typeof spec === 'string' ? parseByteSize(spec) : spec;
  if (fromSpec !== undefined) return fromSpec;
  const fromEnv = Number(env[MEMORY_BUDGET_ENV]);
  if (Number.isFinite(fromEnv) && fromEnv > 0) return fromEnv;
  return Math.min(LOCAL_DEFAULT, Math.floor(totalmem() / 4));
}

export const BYTE_SIZE_TEXT = /^\s*(\d+(?:\.\d+)?)\s*([kmgKMG]?)([iI]?[bB])?\s*$/;

/** `128mb`, `512k`, `1GiB`, `1.5g` or plain bytes; undefined when `text` is none of these. */
export function parseByteSize(text: string): number | undefined {
  const m = BYTE_SIZE_TEXT.exec(text);
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase();
  const base = m[3]?.toLowerCase() === 'ib' ? 1024 : 1000;
  const mult = unit === 'k' ? base : unit === 'm' ? base ** 2 : unit === 'g' ? base ** 3 : 1;
  return Math.round(Number(m[1]) * mult);
}

import { describe, expect, it } from 'vitest';
import {
  MEMORY_BUDGET_ENV,
  MemoryBudget,
  MIN_MEMORY_BUDGET,
  parseByteSize,
  resolveMemoryBudget,
} from '../../lib/util/memory-budget.ts';

const MB = 1024 * 1024;

describe('MemoryBudget', () => {
  it('shares a budget out: a sixteenth for one value read whole, a quarter for DUMPs in flight, parts of a thirty-second up to 8 MB', () => {
    const b = new MemoryBudget(128 * MB);
    expect(b.inPartsAbove).toBe(8 * MB);
    expect(b.inFlightBytes).toBe(32 * MB);
    expect(b.partBytes).toBe(4 * MB);
    expect(new MemoryBudget(1024 * MB).partBytes).toBe(8 * MB);
    expect(new MemoryBudget(1).bytes).toBe(MIN_MEMORY_BUDGET);
  });

  it('reserve waits until earlier reservations are released, and lets one oversized reservation through alone', async () => {
    const b = new MemoryBudget(128 * MB);
    const first = await b.reserve(20 * MB);
    let second = false;
    const pending = b.reserve(20 * MB).then((release) => {
      second = true;
      return release;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(second).toBe(false);
    first();
    (await pending)();
    const huge = await b.reserve(100 * MB);
    huge();
  });

  it('runs big copies one at a time, in order, even when one fails', async () => {
    const b = new MemoryBudget(64 * MB);
    const log: string[] = [];
    const step = (name: string, fail = false) =>
      b.oneBigAtATime(async () => {
        log.push(`start ${name}`);
        await new Promise((r) => setTimeout(r, 5));
        log.push(`end ${name}`);
        if (fail) throw new Error(name);
      });
    const results = await Promise.allSettled([step('a'), step('b', true), step('c')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });
});

describe('resolveMemoryBudget', () => {
  it('takes the spec first, then the environment the stack sets, then the local default', () => {
    expect(resolveMemoryBudget('128mb', { [MEMORY_BUDGET_ENV]: '999999999' })).toBe(128_000_000);
    expect(resolveMemoryBudget(64 * MB, {})).toBe(64 * MB);
    expect(resolveMemoryBudget(undefined, { [MEMORY_BUDGET_ENV]: String(768 * MB) })).toBe(768 * MB);
    const local = resolveMemoryBudget(undefined, {});
    expect(local).toBeGreaterThan(0);
    expect(local).toBeLessThanOrEqual(512 * MB);
  });

  it('parses sizes in decimal and binary units', () => {
    expect(parseByteSize('128mb')).toBe(128_000_000);
    expect(parseByteSize('512MiB')).toBe(512 * MB);
    expect(parseByteSize('1.5g')).toBe(1_500_000_000);
    expect(parseByteSize('4096')).toBe(4096);
    expect(parseByteSize('lots')).toBeUndefined();
  });
});

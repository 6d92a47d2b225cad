import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { seedManyKeys } from '../test/support/seed.ts';

/**
 * Seeds the benchmarks' mixed dataset (strings, hashes, lists, sets, sorted sets) into db 0, prints what
 * it is, and returns the source's DBSIZE.
 */
export async function seedMixedDataset(
  sourcePort: number,
  keys: number,
  valueBytes: number,
): Promise<number> {
  const t0 = performance.now();
  await seedManyKeys(`redis://127.0.0.1:${sourcePort}`, { count: keys, valueBytes, mixed: true });
  const src = new Redis(sourcePort, '127.0.0.1');
  try {
    const usedMemory = Number(/used_memory:(\d+)/.exec(await src.info('memory'))![1]);
    const dbsize = await src.dbsize();
    console.log(
      `dataset: ${dbsize.toLocaleString('en-US')} keys (mixed string/hash/list/set/zset, ${valueBytes}-byte values), ` +
        `used_memory ${(usedMemory / 1e6).toFixed(0)} MB, seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    return dbsize;
  } finally {
    src.disconnect();
  }
}

/**
 * Seeds `keys` strings of `valueBytes` random (incompressible) bytes into db 0: an RDB of about
 * keys × valueBytes, for measuring the RDB reader's memory on a large snapshot. Returns DBSIZE.
 */
export async function seedRandomStrings(
  sourcePort: number,
  keys: number,
  valueBytes: number,
): Promise<number> {
  const t0 = performance.now();
  const src = new Redis(sourcePort, '127.0.0.1');
  try {
    for (let i = 0; i < keys; i += 1000) {
      const p = src.pipeline();
      for (let j = i; j < Math.min(keys, i + 1000); j++) p.set(`rnd:${j}`, randomBytes(valueBytes));
      await p.exec();
    }
    const usedMemory = Number(/used_memory:(\d+)/.exec(await src.info('memory'))![1]);
    const dbsize = await src.dbsize();
    console.log(
      `dataset: ${dbsize.toLocaleString('en-US')} strings of ${valueBytes} random bytes, used_memory ` +
        `${(usedMemory / 1e6).toFixed(0)} MB, seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    return dbsize;
  } finally {
    src.disconnect();
  }
}

import { Redis } from 'ioredis';
import { printableKey } from './compare.ts';
import { debugCommandFor } from './redis-server.ts';

/** What a key holds, as comparable text: its value's digest and its absolute expiry (-1: none). */
interface KeyState {
  digest: string;
  expireAt: number;
}

/**
 * Every key of the given nodes' db, with DEBUG DIGEST-VALUE and PEXPIRETIME, read on the node that holds
 * it: on a cluster pass every master, on a standalone server its one url. Internal keys (`redis-dts:`)
 * are left out; the caller checks those separately.
 */
export async function snapshotKeys(urls: readonly string[], db = 0): Promise<Map<string, KeyState>> {
  const out = new Map<string, KeyState>();
  for (const url of urls) {
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await c.connect();
    try {
      if (db !== 0) await c.select(db);
      let cursor = '0';
      do {
        const [next, keys] = await c.scanBuffer(cursor, 'COUNT', 1000);
        cursor = String(next);
        const mine = keys.filter((k) => !k.toString('latin1').startsWith('redis-dts:'));
        if (mine.length === 0) continue;
        const p = c.pipeline();
        const debug = debugCommandFor(url);
        for (const k of mine) {
          p.call(debug, 'DIGEST-VALUE', k);
          p.call('PEXPIRETIME', k);
        }
        const replies = (await p.exec()) ?? [];
        for (let i = 0; i < mine.length; i++) {
          const [e1, digest] = replies[2 * i]!;
          const [e2, expireAt] = replies[2 * i + 1]!;
          if (e1 || e2) throw e1 ?? e2;
          // A key that expired between SCAN and the reads reads as digest 000… and expiry -2: absent.
          if (expireAt === -2) continue;
          out.set(mine[i]!.toString('hex'), { digest: String(digest), expireAt: Number(expireAt) });
        }
      } while (cursor !== '0');
    } finally {
      c.disconnect();
    }
  }
  return out;
}

/**
 * Key by key, source against destination (either side one server or a cluster's masters): throws naming
 * up to ten differences; resolves with the number of keys compared.
 */
export async function assertSameKeys(
  sourceUrls: readonly string[],
  targetUrls: readonly string[],
  o: { sourceDb?: number; targetDb?: number } = {},
): Promise<number> {
  const [source, target] = await Promise.all([
    snapshotKeys(sourceUrls, o.sourceDb ?? 0),
    snapshotKeys(targetUrls, o.targetDb ?? 0),
  ]);
  const differences: string[] = [];
  let count = 0;
  const note = (hex: string, what: string) => {
    count++;
    if (differences.length < 10) differences.push(`${printableKey(Buffer.from(hex, 'hex'))}: ${what}`);
  };
  for (const [hex, s] of source) {
    const t = target.get(hex);
    if (!t) note(hex, 'missing on the destination');
    else if (t.digest !== s.digest) note(hex, 'value differs');
    else if (t.expireAt !== s.expireAt)
      note(hex, `expiry ${s.expireAt} on the source, ${t.expireAt} on the destination`);
  }
  for (const hex of target.keys()) if (!source.has(hex)) note(hex, 'extra on the destination');
  if (count > 0) {
    throw new Error(
      `${count} difference(s) between ${source.size} source and ${target.size} destination keys:\n  ${differences.join('\n  ')}`,
    );
  }
  return source.size;
}

import type { Redis } from 'ioredis';
import { makeKeyFilter } from '../commands/key-filter.ts';
import { printableKey } from '../fullsync/copy-key-in-parts.ts';
import { classifyAdminError } from '../redis/admin-client.ts';
import { olderRdb, payloadRdbVersion, rdbVersionOfRelease } from '../redis/server-versions.ts';
import { nodeForKey } from './cluster-nodes.ts';
import {
  addressOf,
  failedFrom,
  formatBytes,
  isCommandUnavailable,
  precheckKey,
  productVersion,
  TEMP_KEY_PREFIX,
  TEMP_KEY_TTL_MS,
  transactionCause,
} from './server-facts.ts';
import { type CheckResult, nodesOf, type PrecheckCheck, type PrecheckSide, sideOf } from './types.ts';

/** A sample must be cheap to DUMP and RESTORE: the check should not block either server. */
const MAX_SAMPLE_BYTES = 64 * 1024;
/** SCAN calls per db before giving up on finding a small key (big or filtered-out keys only). */
const MAX_SCANS_PER_DB = 10;

export interface DumpSample {
  db: number;
  key: Buffer;
  payload: Buffer;
}

export const dumpCompat: PrecheckCheck = {
  id: 'dump-compat',
  title: 'Versions and DUMP compatibility',
  needs: ['source', 'target'],
  async run(ctx) {
    const source = sideOf(ctx, 'source');
    const target = sideOf(ctx, 'target');
    const filter = makeKeyFilter(ctx.spec.keyFilter);
    const dbs = ctx.routes.map((r) => r.sourceDb);
    // Any master of a cluster source will do: a replica seed would answer DUMP with MOVED.
    let sample: DumpSample | undefined;
    for (const node of nodesOf(source)) {
      // A standalone source's chunks are read in MULTI/EXEC: the sample is too, so a user lacking
      // them fails here rather than in the middle of the full sync.
      sample = await sampleDump(node.client, dbs, filter, !source.topology);
      if (sample) break;
    }
    const crossVersion = ctx.spec.fullSync.crossVersion;
    if (!sample) return predictFromVersions(source, target, crossVersion);
    return restoreSample(source, target, sample, crossVersion);
  },
};

/**
 * RESTOREs a payload into a temporary key on the destination (with a TTL, then DEL): the destination
 * itself says whether it reads the source's format, which a version table can only guess.
 */
export async function restoreSample(
  source: PrecheckSide,
  target: PrecheckSide,
  sample: DumpSample,
  crossVersion: 'logical' | 'refuse' = 'refuse',
): Promise<CheckResult> {
  const versions = `source ${productVersion(source.fields)}, destination ${productVersion(target.fields)}`;
  const rdb = payloadRdbVersion(sample.payload);
  const key = precheckKey(TEMP_KEY_PREFIX);
  // A cluster destination takes the key only on the master of its slot.
  const node = nodeForKey(target, key);
  const on = target.topology ? ` on master ${addressOf(node.ep)}` : '';
  const what = `key ${printableKey(sample.key)} of db ${sample.db} (${formatBytes(sample.payload.length)}${rdb !== undefined ? `, RDB ${rdb}` : ''})`;
  try {
    await node.client.call('RESTORE', key, String(TEMP_KEY_TTL_MS), sample.payload);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (/payload version or checksum are wrong/i.test(msg)) {
      const reads = rdbVersionOfRelease(target.info.versionNum);
      const refused = `${what} was refused${rdb !== undefined && reads !== undefined ? ` (the destination reads RDB ${reads} and older)` : ''}`;
      // Only where the release table agrees that the destination is older: a refused payload between
      // servers of one RDB version is damage, not a version gap, and no logical copy mends that.
      if (crossVersion === 'logical' && olderRdb(source.info.versionNum, target.info.versionNum)) {
        return logicalWarning(
          source,
          `the destination cannot RESTORE the source's DUMP payloads (${versions}): ${refused}`,
        );
      }
      return {
        status: 'failed',
        detail:
          `the destination cannot RESTORE the source's DUMP payloads (${versions}): ${what} ` +
          `was refused${rdb !== undefined && reads !== undefined ? ` (the destination reads RDB ${reads} and older)` : ''}`,
        fix: olderRdb(source.info.versionNum, target.info.versionNum)
          ? `use a destination of ${productVersion(source.fields)} or newer, or --cross-version logical (fullSync.crossVersion) to write every key with type commands`
          : `use a destination of ${productVersion(source.fields)} or newer (the destination must not be older than the source)`,
      };
    }
    if (/bad data format/i.test(msg)) {
      return {
        status: 'failed',
        detail: `the destination cannot read ${what} (Bad data format): its type comes from a module the destination lacks, or the payload is damaged (${versions})`,
        fix: 'load the same modules on the destination (see the Modules item), or leave such keys out with --exclude-prefix',
      };
    }
    return failedFrom(classifyAdminError(node.client, e, 'RESTORE'), `RESTORE of ${what}${on} failed`);
  } finally {
    await node.client.del(key).catch(() => undefined);
  }
  return {
    status: 'passed',
    detail: `the destination RESTOREd a DUMP of ${what}${on}; ${versions}`,
  };
}

/**
 * fullSync.crossVersion logical: the copy goes on with type commands instead of RESTORE, which the
 * user is to acknowledge (a warning stops the task unless --yes).
 */
function logicalWarning(source: PrecheckSide, why: string): CheckResult {
  return {
    status: 'warning',
    detail:
      `${why}; every key will be written with type commands instead (fullSync.crossVersion logical: ` +
      'SET, RPUSH, SADD, ZADD, HSET, streams with their ids, groups and pending entries), with the scan ' +
      'reader; slower than RESTORE, and keys of module types cannot be copied',
    fix:
      `acknowledge with --yes to copy so, or use a destination of ${productVersion(source.fields)} or newer ` +
      '(--cross-version refuse makes this a failure)',
  };
}

/** With nothing to sample, the release table is the best we have. */
function predictFromVersions(
  source: PrecheckSide,
  target: PrecheckSide,
  crossVersion: 'logical' | 'refuse',
): CheckResult {
  const versions = `source ${productVersion(source.fields)}, destination ${productVersion(target.fields)}`;
  const writes = rdbVersionOfRelease(source.info.versionNum);
  const reads = rdbVersionOfRelease(target.info.versionNum);
  if (writes !== undefined && reads !== undefined && reads < writes) {
    if (crossVersion === 'logical') {
      return logicalWarning(
        source,
        `the destination is older (${versions}): it reads RDB ${reads} and older, the source writes RDB ${writes}`,
      );
    }
    return {
      status: 'warning',
      detail:
        `the selected source dbs have no keys to test RESTORE with, and the destination is older (${versions}): ` +
        `it reads RDB ${reads} and older, the source writes RDB ${writes}, so keys copied later may be refused`,
      fix: `use a destination of ${productVersion(source.fields)} or newer`,
    };
  }
  return {
    status: 'passed',
    detail: `the selected source dbs have no keys to test RESTORE with; the destination is not older (${versions})`,
  };
}

/** The DUMP of a small key the task would copy, or undefined when the selected dbs hold none. */
export async function sampleDump(
  client: Redis,
  dbs: readonly number[],
  filter: (key: Buffer) => boolean,
  inTransaction = false,
): Promise<DumpSample | undefined> {
  try {
    for (const db of dbs) {
      await client.select(db);
      let cursor = '0';
      let scans = 0;
      do {
        const [next, keys] = await client.scanBuffer(cursor, 'COUNT', 100);
        cursor = String(next);
        scans++;
        for (const key of keys) {
          if (!filter(key) || !(await looksSmall(client, key))) continue;
          const payload = inTransaction ? await dumpInTransaction(client, key) : await client.dumpBuffer(key);
          if (payload && payload.length <= MAX_SAMPLE_BYTES) return { db, key, payload };
        }
      } while (cursor !== '0' && scans < MAX_SCANS_PER_DB);
    }
    return undefined;
  } catch (e) {
    throw classifyAdminError(client, e, 'DUMP sample');
  } finally {
    await client.select(0).catch(() => undefined);
  }
}

async function dumpInTransaction(client: Redis, key: Buffer): Promise<Buffer | null> {
  const replies = await client
    .multi()
    .dumpBuffer(key)
    .exec()
    .catch((e: unknown) => {
      throw transactionCause(e);
    });
  const [err, payload] = replies?.[0] ?? [new Error('EXECABORT the transaction was discarded'), null];
  if (err) throw err;
  return payload as Buffer | null;
}

/** MEMORY USAGE keeps a huge key from being DUMPed (which would block the source); unknown counts as small. */
async function looksSmall(client: Redis, key: Buffer): Promise<boolean> {
  try {
    const bytes = await client.call('MEMORY', 'USAGE', key);
    return bytes === null || Number(bytes) <= MAX_SAMPLE_BYTES * 4;
  } catch (e) {
    if (isCommandUnavailable(e)) return true;
    throw e;
  }
}

import { DtsError } from '../../errors.ts';
import { printableKey } from '../../fullsync/copy-key-in-parts.ts';
import { rdbVersionOfRelease, versionNumber } from '../../redis/server-versions.ts';

export interface RestoreRefusalContext {
  key: Buffer;
  db: number;
  /** The RDB version the payload carries (the source's). */
  rdbVersion: number;
  /** The source as its RDB names it (AUX redis-ver), e.g. `7.2.6`. */
  sourceVersion?: string;
  /** The destination's redis_version (INFO server), e.g. `7.0.15`. */
  destinationVersion?: string;
}

/**
 * The destination's error reply to `RESTORE` of a payload taken from the RDB, as a DtsError. A destination
 * older than the source refuses the RDB version in the footer ("DUMP payload version or checksum are
 * wrong"); that one names both versions, since no retry helps.
 */
export function restoreRefusal(message: string, ctx: RestoreRefusalContext): DtsError {
  const what = `key ${printableKey(ctx.key)} of db ${ctx.db}`;
  const source = `the source${ctx.sourceVersion ? ` (${ctx.sourceVersion})` : ''} writes RDB version ${ctx.rdbVersion}`;
  const reads = ctx.destinationVersion
    ? rdbVersionOfRelease(versionNumber(ctx.destinationVersion))
    : undefined;
  const destination = `the destination${ctx.destinationVersion ? ` (${ctx.destinationVersion})` : ''}`;
  if (/payload version or checksum are wrong/i.test(message)) {
    if (reads === undefined || reads < ctx.rdbVersion) {
      return new DtsError(
        'RESTORE_RDB_TOO_NEW',
        `${destination} refused the RESTORE of ${what}: ${source}${reads !== undefined ? `, it reads RDB ${reads} and older` : ''}`,
        'use a destination at least as new as the source, or --full-sync-reader scan with --cross-version logical (keys written with type commands)',
      );
    }
    return new DtsError(
      'RESTORE_CHECKSUM',
      `${destination} refused the RESTORE of ${what} built from the RDB: its checksum does not match (${source}, which it reads)`,
      'take the full sync again; if it fails the same way, report a bug with both versions',
    );
  }
  return new DtsError(
    'RESTORE_REFUSED',
    `${destination} refused the RESTORE of ${what} built from the RDB: ${message}`,
    /bad data format/i.test(message)
      ? 'load the same modules on the destination, or leave such keys out of the task'
      : 'check the destination (memory, ACL, read-only replica) and take the full sync again',
  );
}

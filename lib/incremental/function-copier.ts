import { asciiLower } from '../commands/catalogue.ts';
import { DtsError } from '../errors.ts';
import { parseStamp, type Stamp } from '../fullsync/stamped-chunk-reader.ts';
import type { RawConnection } from '../redis/raw-connection.ts';
import { RespError } from '../redis/resp.ts';
import { ALL_NODES, type ApplyCommand } from './marker-applier.ts';

/**
 * The source's function libraries (Redis 7+) are server state that no SCAN copies: without them, a
 * FUNCTION DELETE of a library made before the task fails on the destination and stops it (found by the
 * replication property test). They are copied like a key: read with FUNCTION DUMP at a stamp, written
 * with FUNCTION RESTORE … REPLACE, and the stream's FUNCTION commands up to that stamp are skipped,
 * since the copy holds their effect.
 */
export interface FunctionCopy {
  /** FUNCTION RESTORE for the destination; absent when the source has no library. */
  command?: ApplyCommand;
  stamp: Stamp;
  libraries: number;
}

const FUNCTION = Buffer.from('FUNCTION');
const RESTORE = Buffer.from('RESTORE');
const REPLACE = Buffer.from('REPLACE');

/** Reads the libraries in one transaction with the offset they were read at; undefined where FUNCTION is refused. */
export async function readFunctions(
  source: RawConnection,
  markerDb: number,
): Promise<FunctionCopy | { refused: string }> {
  const replies = await source.pipeline([
    ['MULTI'],
    ['FUNCTION', 'DUMP'],
    ['FUNCTION', 'LIST'],
    ['INFO', 'replication'],
    ['EXEC'],
  ]);
  const exec = replies[4];
  const queued = replies.slice(1, 4).find((r) => r instanceof RespError);
  if (queued || !Array.isArray(exec)) return { refused: String((queued ?? exec) as RespError) };
  const [payload, list, info] = exec;
  if (payload instanceof RespError) return { refused: payload.message };
  const libraries = Array.isArray(list) ? list.length : 0;
  const stamp = parseStamp(info!);
  if (libraries === 0 || !Buffer.isBuffer(payload)) return { stamp, libraries: 0 };
  // markerDb: any db works for server-wide state, and the connection is there between batches.
  return { command: { db: markerDb, argv: [FUNCTION, RESTORE, payload, REPLACE] }, stamp, libraries };
}

/** FUNCTION LOAD/DELETE/FLUSH/RESTORE: the commands a function copy stands for. */
export function isFunctionCommand(argv: readonly Buffer[]): boolean {
  return argv.length >= 2 && asciiLower(argv[0]!) === 'function';
}

/**
 * The first marker's share of the copy: the FUNCTION RESTORE to apply (none when the source has no
 * library) and the stamp up to which the stream's FUNCTION commands are skipped. Undefined when the
 * source has no functions (before 7.0) or refuses FUNCTION DUMP: its FUNCTION commands are then
 * replayed as they come, as before.
 */
export async function copyFunctions(
  source: RawConnection,
  o: {
    sourceVersion: number;
    /** The destination's redis_version number: before 7.0 it has no FUNCTION. */
    targetVersion?: number;
    markerDb: number;
    cluster: boolean;
    replid: string;
    log?: (m: string) => void;
  },
): Promise<{ commands: ApplyCommand[]; stampOffset: number } | undefined> {
  if (o.sourceVersion < 70000) return undefined;
  const copy = await readFunctions(source, o.markerDb);
  if ('refused' in copy) {
    o.log?.(`functions: not copied (${copy.refused}); FUNCTION commands are replayed as they come`);
    return undefined;
  }
  if (copy.stamp.replid !== o.replid) {
    throw new DtsError(
      'SOURCE_CHANGED',
      `the source's replication id changed from ${o.replid} to ${copy.stamp.replid} while its functions were read`,
      'run the task again: it resumes from the destination marker, or redoes the catch-up',
    );
  }
  if (!copy.command) return { commands: [], stampOffset: copy.stamp.offset };
  if (o.targetVersion !== undefined && o.targetVersion > 0 && o.targetVersion < 70000) {
    throw new DtsError(
      'COMMAND_TOO_NEW_FOR_TARGET',
      `the source holds ${copy.libraries} function libraries, and the destination (redis_version below 7.0) ` +
        'has no FUNCTION to hold them (since Redis 7.0)',
      'use a destination of Redis 7.0 or newer, or FUNCTION DELETE the libraries on the source before the task',
    );
  }
  o.log?.(`functions: copying the source's ${copy.libraries} function libraries`);
  const command = { ...copy.command, ...(o.cluster ? { slot: ALL_NODES } : {}) };
  return { commands: [command], stampOffset: copy.stamp.offset };
}

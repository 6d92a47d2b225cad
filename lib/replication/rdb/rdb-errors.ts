import { DtsError } from '../../errors.ts';
import { printableKey } from '../../fullsync/copy-key-in-parts.ts';
import { typeName } from './rdb-format.ts';

/** Where in the RDB a refusal happened, for messages. */
export interface RdbPlace {
  /** Byte offset in the RDB payload. */
  offset: number;
  db: number;
  key?: Buffer;
}

const RETRY =
  'take the full sync again; if it fails the same way, report a bug with the source version (INFO server)';

function where(place: RdbPlace): string {
  const key = place.key ? ` (db ${place.db}, key ${printableKey(place.key)})` : '';
  return `at byte ${place.offset}${key}`;
}

export function rdbCorrupt(what: string, place: RdbPlace): DtsError {
  return new DtsError('RDB_CORRUPT', `the RDB from the source is malformed ${where(place)}: ${what}`, RETRY);
}

export function rdbTruncated(bytes: number): DtsError {
  return new DtsError(
    'RDB_TRUNCATED',
    `the RDB from the source ended after ${bytes} bytes, before its EOF opcode; keys already written to the destination are incomplete`,
    RETRY,
  );
}

export function rdbChecksumMismatch(expected: bigint, actual: bigint, bytes: number): DtsError {
  return new DtsError(
    'RDB_CHECKSUM',
    `the RDB from the source (${bytes} bytes) fails its CRC64 check (it says ${hex(expected)}, the bytes give ${hex(actual)}): ` +
      'some data was corrupted on the way, and keys already written to the destination cannot be trusted',
    RETRY,
  );
}

export function rdbVersionUnsupported(version: number, newest: number): DtsError {
  return new DtsError(
    'RDB_VERSION_UNSUPPORTED',
    `the source writes RDB version ${version}; this reader walks RDB versions 1 to ${newest} (Redis up to 7.4, Valkey up to 8)`,
    'copy with the scan full sync (DUMP/RESTORE per key), which does not read the RDB',
  );
}

export function rdbModuleValue(moduleName: string, place: RdbPlace): DtsError {
  return new DtsError(
    'RDB_MODULE_TYPE',
    `the source holds a value of module type '${moduleName}' ${where(place)}; copying module values is not built`,
    `leave such keys out of the task, or remove the module's data from the source`,
  );
}

export function rdbModuleAux(moduleName: string, place: RdbPlace): DtsError {
  return new DtsError(
    'RDB_MODULE_AUX',
    `the source's RDB carries data of the module '${moduleName}' ${where(place)}; copying module data is not built`,
    `unload the module '${moduleName}' from the source, or copy with the scan full sync`,
  );
}

export function rdbUnsupportedType(type: number, place: RdbPlace, why: string): DtsError {
  return new DtsError(
    'RDB_UNSUPPORTED_TYPE',
    `the RDB from the source holds a value of type ${typeName(type)} ${where(place)}: ${why}`,
    'copy with the scan full sync (DUMP/RESTORE per key), which does not read the RDB',
  );
}

export function rdbValueTooLarge(bytes: number, limit: number, place: RdbPlace): DtsError {
  return new DtsError(
    'RDB_VALUE_TOO_LARGE',
    `a key in the source's RDB ${where(place)} is over ${bytes} bytes, above the reader's limit of ${limit} bytes for one value; ` +
      'decoding such a value in parts is not built',
    'raise the memory budget above the size of the largest value, or leave the key out of the task',
  );
}

function hex(n: bigint): string {
  return `0x${n.toString(16).padStart(16, '0')}`;
}

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the shared server builds live: ../shared/redis-servers beside the checkout (see its README). */
const BUILDS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'redis-servers');

export interface ServerBuild {
  /** e.g. `redis-6.2.16`, `valkey-8.0.1`, `redis-7.0` (the system server). */
  name: string;
  /** Path of the binary, or `redis-server` for the system one. */
  binary: string;
  /** [major, minor] for choosing pairs (a destination not older than its source). */
  version: [number, number];
  /** The RDB version its DUMP writes (the builds' README): RESTORE refuses a newer one. */
  rdb: number;
  /** False where the binary is missing on this machine: its tests are skipped, saying so. */
  present: boolean;
}

function shared(file: string, name: string, version: [number, number], rdb: number): ServerBuild {
  const binary = join(BUILDS_DIR, file);
  return { name, binary, version, rdb, present: existsSync(binary) };
}

/** Every server build the version matrix runs against, oldest first. */
export const SERVER_BUILDS: readonly ServerBuild[] = [
  shared('redis-server-6.0.20', 'redis-6.0.20', [6, 0], 9),
  shared('redis-server-6.2.16', 'redis-6.2.16', [6, 2], 9),
  { name: 'redis-7.0', binary: 'redis-server', version: [7, 0], rdb: 10, present: true },
  shared('redis-server-7.2.6', 'redis-7.2.6', [7, 2], 11),
  shared('valkey-server-8.0.1', 'valkey-8.0.1', [8, 0], 11),
];

export function serverBuild(name: string): ServerBuild {
  const build = SERVER_BUILDS.find((b) => b.name === name);
  if (!build) throw new Error(`no server build named ${name}`);
  return build;
}

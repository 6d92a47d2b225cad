#!/usr/bin/env node
/**
 * Writes lib/commands/data/redis-7.0-commands.json from the COMMAND reply of a local redis-server 7.0:
 * the command catalogue's fallback when a source's own COMMAND is renamed, denied or predates key specs.
 * Starts its own throwaway server on a unix socket (no port, no persistence).
 *
 *   node bin/generate-command-table.ts [--check] [--redis-server /path/to/redis-server]
 *
 * `--check` (CI) changes nothing and exits 1 when the file is missing or differs from what the server says.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  COMMAND_TABLE_FILE,
  COMMAND_TABLE_REDIS_VERSION,
  fetchCommandTable,
  renderCommandTable,
} from '../lib/commands/catalogue-table-file.ts';
import { writeOrCheck } from './generated-file.ts';

const args = process.argv.slice(2);
const check = args.includes('--check');
const serverAt = args.indexOf('--redis-server');
const serverBin = serverAt >= 0 ? args[serverAt + 1] : 'redis-server';
if (!serverBin) fail('--redis-server needs a path', 'pass the redis-server binary to use');

const dir = mkdtempSync(join(tmpdir(), 'redis-dts-command-table-'));
const socket = join(dir, 'redis.sock');
const server = spawn(
  serverBin,
  ['--port', '0', '--unixsocket', socket, '--save', '', '--appendonly', 'no', '--dir', dir],
  { stdio: 'ignore' },
);
let serverError: Error | undefined;
server.on('error', (e) => {
  serverError = e;
});

let wanted: string;
try {
  wanted = await readTable();
} finally {
  server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

writeOrCheck(COMMAND_TABLE_FILE, wanted, check, 'node bin/generate-command-table.ts');

async function readTable(): Promise<string> {
  const client = new Redis({ path: socket, lazyConnect: true, maxRetriesPerRequest: 0, protocol: 2 });
  client.on('error', () => {});
  try {
    await connectWithin(client, 10_000);
    const version = /^redis_version:(\S+)/m.exec(await client.info('server'))?.[1] ?? 'unknown';
    if (!version.startsWith(`${COMMAND_TABLE_REDIS_VERSION}.`)) {
      fail(
        `${serverBin} is Redis ${version}; the table is generated from Redis ${COMMAND_TABLE_REDIS_VERSION}`,
        `put a redis-server ${COMMAND_TABLE_REDIS_VERSION}.x first on PATH or pass --redis-server`,
      );
    }
    return renderCommandTable(await fetchCommandTable(client));
  } finally {
    client.disconnect();
  }
}

async function connectWithin(client: Redis, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (serverError) fail(`cannot start ${serverBin}: ${serverError.message}`, 'install redis-server 7.0');
    if (server.exitCode !== null)
      fail(`${serverBin} exited (${server.exitCode})`, 'run it by hand to see why');
    try {
      await client.connect();
      return;
    } catch {
      client.disconnect();
      if (Date.now() > deadline)
        fail(`${serverBin} did not start within ${ms} ms`, 'run it by hand to see why');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function fail(message: string, fix: string): never {
  process.stderr.write(`error: ${message}\nfix: ${fix}\n`);
  server?.kill('SIGKILL');
  process.exit(1);
}

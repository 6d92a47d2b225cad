import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import dynalite from 'dynalite';
import { DtsError } from '../errors.ts';

export interface EmbeddedDynamo {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** Stops the server and closes the LevelDB store, releasing its lock. Idempotent. */
  close(): Promise<void>;
}

export interface EmbeddedDynamoOptions {
  /** Keep the data on disk under `<stateDir>/dynamodb` (so a killed run can resume); in memory when undefined. */
  stateDir?: string;
}

/** dynalite (the DynamoDB API over LevelDB) on a free loopback port. */
export async function startEmbeddedDynamo(opts: EmbeddedDynamoOptions = {}): Promise<EmbeddedDynamo> {
  let path: string | undefined;
  if (opts.stateDir !== undefined) {
    path = join(resolve(opts.stateDir), 'dynamodb');
    await prepareDir(opts.stateDir, path);
  }
  // Tables are ACTIVE at once: nothing real is being provisioned, and callers wait for ACTIVE anyway.
  const { server, store } = createDynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  // A store that failed to open holds no lock and no handles, and the server never listened: drop both.
  await openStore(store, opts.stateDir, path);
  try {
    await listen(server);
  } catch (e) {
    // The server's close() only closes the store once it was listening, so release the lock directly.
    await store.db.close();
    throw e;
  }
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  // Lets `redis-dts status` / `stop` reach the running task's store while this run holds the lock.
  const endpointFile = opts.stateDir !== undefined ? join(resolve(opts.stateDir), ENDPOINT_FILE) : undefined;
  if (endpointFile) await writeFile(endpointFile, `${JSON.stringify({ endpoint, pid: process.pid })}\n`);

  let closing: Promise<void> | undefined;
  return {
    endpoint,
    close() {
      closing ??= (async () => {
        if (endpointFile) await rm(endpointFile, { force: true });
        await new Promise<void>((done, fail) => server.close((err) => (err ? fail(err) : done())));
      })();
      return closing;
    },
  };
}

const ENDPOINT_FILE = 'dynamodb.endpoint';

/** The embedded DynamoDB a live process serves for this store directory, if any: its endpoint and pid. */
export async function runningEndpoint(
  stateDir: string,
): Promise<{ endpoint: string; pid: number } | undefined> {
  try {
    const text = await readFile(join(resolve(stateDir), ENDPOINT_FILE), 'utf8');
    const { endpoint, pid } = JSON.parse(text) as { endpoint: string; pid: number };
    process.kill(pid, 0); // throws when that process is gone
    return { endpoint, pid };
  } catch {
    return undefined;
  }
}

function listen(server: Server): Promise<void> {
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', fail);
      done();
    });
  });
}

async function prepareDir(stateDir: string, path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new DtsError(
      'STATE_DIR_UNWRITABLE',
      `cannot create the state directory ${path} (${reason})`,
      `make ${stateDir} writable by this user, or use another --state-dir`,
      { cause: e },
    );
  }
}

/**
 * dynalite opens LevelDB lazily, and when that open fails (another run holds the lock) its first request throws
 * where nobody can catch it. So we open the store ourselves before listening: its constructor defers the open
 * to a microtask, and our explicit open() takes its place, so the lock is either held or refused, with the
 * cause, before any request arrives. Reaching the store means wrapping dynalite/db's create(), which dynalite()
 * calls synchronously; the test suite fails if a dynalite upgrade moves it.
 */
interface DynaliteStore {
  db: { open(): Promise<void>; close(): Promise<void> };
}

type DynaliteOptions = NonNullable<Parameters<typeof dynalite>[0]>;

const require = createRequire(import.meta.url);
const dynaliteDb = require('dynalite/db') as { create(options: object): DynaliteStore };
const originalCreate = dynaliteDb.create;
let lastCreated: DynaliteStore | undefined;
dynaliteDb.create = (options) => {
  lastCreated = originalCreate(options);
  return lastCreated;
};

function createDynalite(options: DynaliteOptions): { server: Server; store: DynaliteStore } {
  lastCreated = undefined;
  const server = dynalite(options);
  const store = lastCreated as DynaliteStore | undefined;
  if (store === undefined || typeof store.db?.open !== 'function') {
    throw new Error('dynalite internals changed: dynalite/db create() no longer returns the LevelDB store');
  }
  return { server, store };
}

async function openStore(
  store: DynaliteStore,
  stateDir: string | undefined,
  path: string | undefined,
): Promise<void> {
  try {
    await store.db.open();
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    if (stateDir === undefined || path === undefined) throw e;
    if (cause?.code === 'LEVEL_LOCKED') {
      throw new DtsError(
        'STATE_DIR_LOCKED',
        `state dir ${stateDir} is in use by another redis-dts run`,
        'wait for it to finish, or use another --state-dir',
        { cause: e },
      );
    }
    throw new DtsError(
      'STATE_DIR_UNREADABLE',
      `state dir ${stateDir} holds no readable task store (${cause?.message ?? (e as Error).message})`,
      `use another --state-dir, or delete ${path} to start afresh (its task state is lost)`,
      { cause: e },
    );
  }
}

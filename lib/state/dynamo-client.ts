import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DtsError } from '../errors.ts';
import { runningEndpoint, startEmbeddedDynamo } from './embedded-dynamo.ts';
import { refuseSharedLayout, taskStoreDir } from './local-state-dir.ts';
import { TaskStore } from './task-store.ts';

export const DEFAULT_TABLE_NAME = 'redis-dts-tasks';

export interface DynamoClientOptions {
  /** A local DynamoDB-compatible endpoint (dynalite); unset means real DynamoDB. */
  endpoint?: string;
  region?: string;
}

/**
 * With an endpoint, dummy static credentials and region 'local' keep the AWS credential chain (and so any
 * real account) out of local mode entirely; without one, the default chain and region apply.
 */
export function createDynamoClient(opts: DynamoClientOptions = {}): DynamoDBClient {
  if (opts.endpoint !== undefined) {
    return new DynamoDBClient({
      endpoint: opts.endpoint,
      region: opts.region ?? 'local',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
  }
  return new DynamoDBClient(opts.region === undefined ? {} : { region: opts.region });
}

export interface LocalStore {
  store: TaskStore;
  endpoint: string;
  /** Closes the client and the embedded DynamoDB (releasing the state dir). Idempotent. */
  close(): Promise<void>;
}

/**
 * The task store of local mode: embedded dynalite, in memory, or on disk for one task of a state
 * directory (`<stateDir>/tasks/<taskId>/`, see local-state-dir.ts), with the table ready. A reader
 * (`shared`: status, list, stop) joins the store a live run of that task serves; a run refuses a task
 * that another live run already has, naming its pid.
 */
export async function openLocalStore(
  opts: { stateDir?: string; taskId?: string; tableName?: string; shared?: boolean } = {},
): Promise<LocalStore> {
  let storeDir: string | undefined;
  if (opts.stateDir !== undefined) {
    if (opts.taskId === undefined)
      throw new Error('openLocalStore: a state dir holds one store per task: name the task');
    refuseSharedLayout(opts.stateDir);
    storeDir = taskStoreDir(opts.stateDir, opts.taskId);
    const running = await runningEndpoint(storeDir);
    if (running !== undefined && opts.shared) {
      const client = createDynamoClient({ endpoint: running.endpoint });
      return {
        store: new TaskStore(client, opts.tableName ?? DEFAULT_TABLE_NAME),
        endpoint: running.endpoint,
        close: async () => client.destroy(),
      };
    }
    if (running !== undefined) throw taskRunning(opts.stateDir, opts.taskId, running.pid);
  }
  const dynamo = await startEmbeddedDynamo({ stateDir: storeDir }).catch((e: unknown) => {
    if (e instanceof DtsError && e.code === 'STATE_DIR_LOCKED' && opts.stateDir !== undefined) {
      // Held, but its endpoint not published (yet): a run of this task is starting or ending.
      throw new DtsError(
        e.code,
        `task '${opts.taskId}' is in use by another redis-dts run in state dir ${opts.stateDir}`,
        opts.shared
          ? 'wait a moment and try again'
          : 'wait for that run to finish, or give this one another --task-id',
        { cause: e },
      );
    }
    throw e;
  });
  const client = createDynamoClient({ endpoint: dynamo.endpoint });
  const close = async (): Promise<void> => {
    // Destroying the client first drops its keep-alive sockets, which would otherwise hold the server open.
    client.destroy();
    await dynamo.close();
  };
  const store = new TaskStore(client, opts.tableName ?? DEFAULT_TABLE_NAME);
  try {
    await store.ensureTable();
  } catch (e) {
    await close();
    throw e;
  }
  return { store, endpoint: dynamo.endpoint, close };
}

/** How long a reader waits out a run of its task that is ending (its store server closing under it). */
const RUN_ENDING_ATTEMPTS = 40;
const RUN_ENDING_WAIT_MS = 250;

/**
 * Opens the local store of a task as a reader (`shared`), runs `use` and closes it. A run of the task that
 * ends meanwhile (a cut-over taken, a stop) closes the server its endpoint named: the connection is
 * refused, or the lock is held without an endpoint for a moment; then the store is opened again, from
 * its files once the run is gone. A refused connection sent nothing, so `use` may run again.
 */
export async function useLocalStore<T>(
  opts: { stateDir: string; taskId: string },
  use: (store: TaskStore) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let local: LocalStore | undefined;
    try {
      local = await openLocalStore({ ...opts, shared: true });
      return await use(local.store);
    } catch (e) {
      if (attempt >= RUN_ENDING_ATTEMPTS || !isRunEnding(e)) throw e;
    } finally {
      await local?.close();
    }
    await new Promise((r) => setTimeout(r, RUN_ENDING_WAIT_MS));
  }
}

function isRunEnding(e: unknown): boolean {
  if (e instanceof DtsError) return e.code === 'STATE_DIR_LOCKED';
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 4; c = c.cause, depth++) {
    if ((c as NodeJS.ErrnoException).code === 'ECONNREFUSED') return true;
  }
  return false;
}

function taskRunning(stateDir: string, taskId: string, pid: number): DtsError {
  return new DtsError(
    'TASK_RUNNING',
    `task '${taskId}' is already running from state dir ${stateDir} (pid ${pid})`,
    `let it run (redis-dts status ${taskId}), stop it (redis-dts stop ${taskId}), or start this one with another --task-id`,
  );
}

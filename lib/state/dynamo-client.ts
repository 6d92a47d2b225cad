import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DtsError } from '../errors.ts';
import { runningEndpoint, startEmbeddedDynamo } from './embedded-dynamo.ts';
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

/** The task store of local mode: embedded dynalite (in memory, or under `<stateDir>/dynamodb`) with the table ready. */
export async function openLocalStore(
  opts: { stateDir?: string; tableName?: string; shared?: boolean } = {},
): Promise<LocalStore> {
  if (opts.shared && opts.stateDir !== undefined) {
    // Readers (status, list, stop) join the store of a run in progress instead of waiting for its lock.
    const endpoint = await runningEndpoint(opts.stateDir);
    if (endpoint !== undefined) {
      const client = createDynamoClient({ endpoint });
      return {
        store: new TaskStore(client, opts.tableName ?? DEFAULT_TABLE_NAME),
        endpoint,
        close: async () => client.destroy(),
      };
    }
  }
  const dynamo = await startEmbeddedDynamo({ stateDir: opts.stateDir }).catch((e: unknown) => {
    if (e instanceof DtsError && e.code === 'STATE_DIR_LOCKED' && opts.shared) {
      throw new DtsError(
        e.code,
        e.message,
        'the run holding it did not publish its endpoint: wait for it to finish',
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

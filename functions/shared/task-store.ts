import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DtsError } from '../../lib/errors.ts';
import { TaskStore } from '../../lib/state/task-store.ts';

let store: TaskStore | undefined;

/**
 * The stack's table (TABLE_NAME), one client per function instance. The client is built here rather
 * than with lib/state/dynamo-client.ts, whose module also loads the embedded DynamoDB (dynalite and a
 * native LevelDB binding) that a Lambda bundle must not carry.
 */
export function taskStore(): TaskStore {
  if (store) return store;
  const table = process.env.TABLE_NAME;
  if (!table) {
    throw new DtsError(
      'MISCONFIGURED',
      'TABLE_NAME is not set',
      'deploy the function with the RedisDts construct',
    );
  }
  store = new TaskStore(new DynamoDBClient({}), table);
  return store;
}

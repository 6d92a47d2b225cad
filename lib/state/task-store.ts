import {
  type AttributeValue,
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { DtsError } from '../errors.ts';
import type { UnitProgress } from '../fullsync/copy-unit.ts';
import { marshalItem, unmarshalItem } from './attribute-codec.ts';
import {
  CUT_OVER_SK,
  DIRTY_SK_PREFIX,
  dirtyPageSk,
  SHARD_SK_PREFIX,
  STOP_SK,
  shardSk,
  TASK_SK,
  taskPk,
  UNIT_SK_PREFIX,
  unitSk,
} from './item-keys.ts';

/** Progress of one full-sync unit (one db of one source shard); one item each, rewritten after every chunk. */
/** A full-sync unit's checkpoint: its progress (cursor, largest stamp, counters) and where it maps. */
export interface UnitCheckpoint extends UnitProgress {
  unitId: string;
  sourceDb: number;
  targetDb: number;
  /** Cluster source: the unit's shard and the master it reads from. */
  shardId?: string;
  sourceNode?: { host: string; port: number };
  updatedAt: string;
}

export type TaskStatus = 'created' | 'running' | 'succeeded' | 'failed' | 'stopped';

export interface TaskRecord {
  taskId: string;
  name: string;
  /** The task spec with secrets already removed by the caller. */
  spec: Record<string, unknown>;
  status: TaskStatus;
  phase: string;
  createdAt: string;
  updatedAt: string;
  lastError?: { code: string; message: string; fix: string };
  /** The Fargate replicator's permanent failure in the current run (replicator-verdict.ts). */
  replicatorVerdict?: { code: string; message: string; fix: string; at: string };
  progress?: Record<string, number>;
  /** The latest sampled verification during incremental sync. */
  sampledVerification?: { at: string; keysCompared: number; inconsistentKeys: number; examples: string[] };
  /** Incremental sync from keyspace notifications: how the subscription started, its gaps and repairs. */
  notifications?: NotificationStatus;
  /** When the full sync began and ended (for the Full Sync Completed event, sent once per full sync). */
  fullSyncStartedAt?: string;
  fullSyncCompletedAt?: string;
  /** The last precheck report (items with status, detail and fix). */
  precheck?: {
    status: string;
    items: { id: string; title: string; status: string; detail: string; fix?: string }[];
  };
}

/** What `status` shows of the notification reader (incremental.reader notifications). */
export interface NotificationStatus {
  /** When this run's subscription started, and whether it was held from before the full sync. */
  subscribedAt: string;
  subscription: 'held since before the full sync' | 'fresh: a repair round covers what came before';
  gaps: number;
  recentGaps: { at: string; shardId: string; cause: string }[];
  repairRounds: number;
  lastRepair?: { at: string; keysCompared: number; keysDiffering: number; seconds: number };
  keysRecopied: number;
  dirtyKeys: number;
  updatedAt: string;
}

/**
 * A cut-over asked of a running incremental task (`redis-dts cutover`, the Cut Over Task event), and
 * how it went: requested → accepted (quiet and applied: the sync ends, Verify runs) → done (Cleanup),
 * or refused (still written after the quiet timeout: the sync goes on).
 */
export interface CutOverRequest {
  requestedAt: string;
  quietTimeoutMs: number;
  state: 'requested' | 'accepted' | 'refused' | 'done';
  reason?: string;
  fix?: string;
  /** The final verification's summary line, once Verify ran. */
  verify?: {
    mode: string;
    skipped: boolean;
    consistent: boolean;
    keysCompared: number;
    keysDiffering: number;
    summary: string;
  };
  updatedAt: string;
}

/** Where a source shard's replication stands: what incremental sync resumes from. */
export interface ShardCheckpoint {
  shardId: string;
  /** Cluster source: the master the offset was captured on. */
  node?: { host: string; port: number };
  /** Cluster source: a hash tag on one of the shard's slots, for its heartbeat key. */
  tag?: string;
  replid: string;
  /** The offset captured before the full sync (O0): the incremental stream starts after it. */
  startOffset: number;
  /** Last offset applied to the destination (the destination marker is the authority after a crash). */
  appliedOffset: number;
  phase: string;
  /**
   * Full sync through the RDB (fullSync.reader rdb): 'pending' until the snapshot is taken, 'loading'
   * while it is written (seen at a start: an interrupted load, which is redone from an emptied
   * destination), 'loaded' once replid/startOffset are the snapshot's.
   */
  rdb?: 'pending' | 'loading' | 'loaded';
  /** Destination dbs an RDB load has written to (what an interrupted one leaves behind). */
  rdbTargetDbs?: number[];
  /** The RDB load's figures: keys written and their payload bytes. */
  rdbKeys?: number;
  rdbBytes?: number;
  /** Keys of the snapshot too big for one RESTORE, copied in parts before the first marker (base64). */
  rdbOversized?: { db: number; key: string }[];
  /** Peak RSS of the process that loaded the RDB, bytes. */
  rdbPeakRssBytes?: number;
  /** The last incremental run's figures. */
  commandsApplied?: number;
  keysRecopied?: number;
  updatedAt: string;
}

/**
 * One page of a shard's dirty set (keys written during the full sync, to be re-copied). Keys are
 * stored base64 (they are bytes); a page stays far below DynamoDB's 400 KB item limit.
 */
export interface DirtyPage {
  shardId: string;
  page: number;
  entries: { db: number; key: string }[];
}

/** Largest serialized page the store accepts, well under the 400 KB item limit. */
export const MAX_DIRTY_PAGE_BYTES = 300_000;

export interface Versioned<T> {
  value: T;
  version: number;
}

/** A conditional write lost: the item was created or changed by someone else since it was read. */
export class VersionConflictError extends Error {
  override readonly name = 'VersionConflictError';
  readonly key: string;
  readonly expectedVersion: number | undefined;

  constructor(key: string, expectedVersion: number | undefined) {
    super(
      expectedVersion === undefined
        ? `${key} already exists`
        : `${key} is no longer at version ${expectedVersion} (changed or deleted by another writer)`,
    );
    this.key = key;
    this.expectedVersion = expectedVersion;
  }
}

// Attributes the store owns on every item; values must not use these names.
const RESERVED = ['pk', 'sk', 'version'];
const UPDATE_ATTEMPTS = 10;
const TABLE_READY_TIMEOUT_MS = 5 * 60_000;
const BATCH_DELETE_SIZE = 25;
const BATCH_RETRY_ATTEMPTS = 8;

/**
 * Task state in one DynamoDB table (keys pk/sk, see item-keys.ts). Every item carries a numeric `version`
 * and is written with a single-item conditional put, so concurrent writers never half-overwrite each other
 * and no transactions are needed.
 */
export class TaskStore {
  private readonly client: DynamoDBClient;
  readonly tableName: string;

  constructor(client: DynamoDBClient, tableName: string) {
    this.client = client;
    this.tableName = tableName;
  }

  /** Creates the table when it is missing and waits until it is ACTIVE. Safe to call from several runs. */
  async ensureTable(): Promise<void> {
    const deadline = Date.now() + TABLE_READY_TIMEOUT_MS;
    for (let attempt = 0; ; attempt++) {
      const status = await this.tableStatus();
      if (status === 'ACTIVE') return;
      if (status === undefined) await this.createTable();
      if (Date.now() > deadline) {
        throw new DtsError(
          'STATE_TABLE_NOT_READY',
          `DynamoDB table ${this.tableName} did not become ACTIVE (last status ${status ?? 'missing'})`,
          'check the table in the DynamoDB console, or use another table name',
        );
      }
      await sleep(Math.min(2000, 50 * 2 ** attempt));
    }
  }

  async getTask(taskId: string): Promise<Versioned<TaskRecord> | undefined> {
    return this.getVersioned<TaskRecord>(taskId, TASK_SK);
  }

  /** Writes the whole task item; with expectedVersion undefined the task must not exist yet. Returns the new version. */
  async putTask(task: TaskRecord, expectedVersion?: number): Promise<number> {
    return this.putVersioned(task.taskId, TASK_SK, task, expectedVersion);
  }

  /**
   * Read-modify-write of the task item. With expectedVersion, a change since that version throws
   * VersionConflictError; without, conflicting writes are retried on a fresh read. `updatedAt` defaults to now,
   * and a patch property set to undefined removes it (e.g. clearing lastError).
   */
  async updateTask(taskId: string, patch: Partial<TaskRecord>, expectedVersion?: number): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.getTask(taskId);
      if (current === undefined) {
        throw new DtsError(
          'TASK_NOT_FOUND',
          `task ${taskId} does not exist in table ${this.tableName}`,
          'check the task id against the list of tasks',
        );
      }
      if (expectedVersion !== undefined && current.version !== expectedVersion) {
        throw new VersionConflictError(itemName(taskId, TASK_SK), expectedVersion);
      }
      const next: TaskRecord = { ...current.value, updatedAt: new Date().toISOString(), ...patch, taskId };
      try {
        return await this.putTask(next, current.version);
      } catch (e) {
        if (
          !(e instanceof VersionConflictError) ||
          expectedVersion !== undefined ||
          attempt >= UPDATE_ATTEMPTS
        ) {
          throw e;
        }
        await sleep(Math.random() * 20 * attempt);
      }
    }
  }

  /** Every task, oldest first. Scans the table: fine for the handful of tasks one account runs. */
  async listTasks(): Promise<TaskRecord[]> {
    const tasks: TaskRecord[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.client.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: '#sk = :sk',
          ExpressionAttributeNames: { '#sk': 'sk' },
          ExpressionAttributeValues: { ':sk': { S: TASK_SK } },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of out.Items ?? []) tasks.push(fromItem<TaskRecord>(item).value);
      startKey = out.LastEvaluatedKey;
    } while (startKey !== undefined);
    return tasks.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.taskId.localeCompare(b.taskId));
  }

  async getCheckpoint(taskId: string, unitId: string): Promise<Versioned<UnitCheckpoint> | undefined> {
    return this.getVersioned<UnitCheckpoint>(taskId, unitSk(unitId));
  }

  /** All unit checkpoints of a task, ordered by unit id. */
  async listCheckpoints(taskId: string): Promise<Versioned<UnitCheckpoint>[]> {
    const items = await this.queryTask(taskId, UNIT_SK_PREFIX);
    return items.map((item) => fromItem<UnitCheckpoint>(item));
  }

  /** With expectedVersion undefined the checkpoint must not exist yet. Returns the new version. */
  async putCheckpoint(
    taskId: string,
    cp: UnitCheckpoint,
    expectedVersion: number | undefined,
  ): Promise<number> {
    return this.putVersioned(taskId, unitSk(cp.unitId), cp, expectedVersion);
  }

  async getShard(taskId: string, shardId: string): Promise<Versioned<ShardCheckpoint> | undefined> {
    return this.getVersioned<ShardCheckpoint>(taskId, shardSk(shardId));
  }

  /** Every shard checkpoint of a task (one per source master), ordered by shard id. */
  async listShards(taskId: string): Promise<Versioned<ShardCheckpoint>[]> {
    const items = await this.queryTask(taskId, SHARD_SK_PREFIX);
    return items.map((item) => fromItem<ShardCheckpoint>(item));
  }

  async putShard(
    taskId: string,
    shard: ShardCheckpoint,
    expectedVersion: number | undefined,
  ): Promise<number> {
    return this.putVersioned(taskId, shardSk(shard.shardId), shard, expectedVersion);
  }

  /** Writes (or overwrites) one page of a dirty set; refuses a page too large for one item. */
  async putDirtyPage(taskId: string, page: DirtyPage): Promise<void> {
    const size = Buffer.byteLength(JSON.stringify(page.entries));
    if (size > MAX_DIRTY_PAGE_BYTES) {
      throw new Error(`dirty page ${page.page} is ${size} bytes; split it (limit ${MAX_DIRTY_PAGE_BYTES})`);
    }
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: marshalItem({ pk: taskPk(taskId), sk: dirtyPageSk(page.shardId, page.page), ...page }),
      }),
    );
  }

  /** Every page of a shard's dirty set, in page order. */
  async listDirtyPages(taskId: string, shardId: string): Promise<DirtyPage[]> {
    const items = await this.queryTask(taskId, `${DIRTY_SK_PREFIX}${shardId}#`);
    return items.map((item) => {
      const { pk: _pk, sk: _sk, ...rest } = unmarshalItem(item);
      return rest as unknown as DirtyPage;
    });
  }

  /** Removes a shard's dirty set once it has been re-copied. */
  async deleteDirtyPages(taskId: string, shardId: string): Promise<void> {
    const items = await this.queryTask(taskId, `${DIRTY_SK_PREFIX}${shardId}#`, 'pk, sk');
    for (const item of items) {
      await this.client.send(
        new DeleteItemCommand({ TableName: this.tableName, Key: { pk: item.pk!, sk: item.sk! } }),
      );
    }
  }

  /** Idempotent; workers see it at their next isStopRequested() check. */
  async requestStop(taskId: string): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: marshalItem({ pk: taskPk(taskId), sk: STOP_SK, requestedAt: new Date().toISOString() }),
      }),
    );
  }

  /** A new run of a stopped task starts without the old request. */
  async clearStop(taskId: string): Promise<void> {
    await this.client.send(new DeleteItemCommand({ TableName: this.tableName, Key: keyOf(taskId, STOP_SK) }));
  }

  async isStopRequested(taskId: string): Promise<boolean> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: keyOf(taskId, STOP_SK),
        ConsistentRead: true,
        ProjectionExpression: 'pk',
      }),
    );
    return out.Item !== undefined;
  }

  async getCutOver(taskId: string): Promise<Versioned<CutOverRequest> | undefined> {
    return this.getVersioned<CutOverRequest>(taskId, CUT_OVER_SK);
  }

  /** Conditional on expectedVersion (undefined: the item must not exist), like every versioned item. */
  async putCutOver(taskId: string, request: CutOverRequest, expectedVersion?: number): Promise<number> {
    return this.putVersioned(taskId, CUT_OVER_SK, request, expectedVersion);
  }

  /** A new run of a task starts without an old cut-over request. */
  async clearCutOver(taskId: string): Promise<void> {
    await this.client.send(
      new DeleteItemCommand({ TableName: this.tableName, Key: keyOf(taskId, CUT_OVER_SK) }),
    );
  }

  /** Removes every item of the task (task, checkpoints, offsets, dirty pages, stop flag). */
  async deleteTask(taskId: string): Promise<void> {
    await this.deleteItems(await this.queryTask(taskId, undefined, 'pk, sk'));
  }

  /**
   * Removes the task's sync position (unit checkpoints, shard offsets, dirty pages) and keeps its record:
   * once an incremental task has ended and its markers are gone, running it again starts a fresh sync.
   */
  async deleteSyncState(taskId: string): Promise<void> {
    for (const prefix of [UNIT_SK_PREFIX, SHARD_SK_PREFIX, DIRTY_SK_PREFIX]) {
      await this.deleteItems(await this.queryTask(taskId, prefix, 'pk, sk'));
    }
  }

  private async deleteItems(items: Record<string, AttributeValue>[]): Promise<void> {
    const keys = items.map((item) => ({ pk: item.pk as AttributeValue, sk: item.sk as AttributeValue }));
    for (let i = 0; i < keys.length; i += BATCH_DELETE_SIZE) {
      const requests = keys.slice(i, i + BATCH_DELETE_SIZE).map((Key) => ({ DeleteRequest: { Key } }));
      await this.batchWrite(requests);
    }
  }

  private async batchWrite(requests: WriteRequest[]): Promise<void> {
    let pending = requests;
    for (let attempt = 1; pending.length > 0; attempt++) {
      const out = await this.client.send(
        new BatchWriteItemCommand({ RequestItems: { [this.tableName]: pending } }),
      );
      pending = out.UnprocessedItems?.[this.tableName] ?? [];
      if (pending.length === 0) return;
      // Unprocessed items mean throttling; back off before resending only those.
      if (attempt >= BATCH_RETRY_ATTEMPTS) {
        throw new Error(`${pending.length} deletes stayed unprocessed after ${attempt} attempts`);
      }
      await sleep(Math.min(2000, 25 * 2 ** attempt));
    }
  }

  private async queryTask(
    taskId: string,
    skPrefix: string | undefined,
    projection?: string,
  ): Promise<Record<string, AttributeValue>[]> {
    const items: Record<string, AttributeValue>[] = [];
    const values: Record<string, AttributeValue> = { ':pk': { S: taskPk(taskId) } };
    if (skPrefix !== undefined) values[':prefix'] = { S: skPrefix };
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression:
            skPrefix === undefined ? '#pk = :pk' : '#pk = :pk AND begins_with(#sk, :prefix)',
          ExpressionAttributeNames: skPrefix === undefined ? { '#pk': 'pk' } : { '#pk': 'pk', '#sk': 'sk' },
          ExpressionAttributeValues: values,
          ProjectionExpression: projection,
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      items.push(...(out.Items ?? []));
      startKey = out.LastEvaluatedKey;
    } while (startKey !== undefined);
    return items;
  }

  private async getVersioned<T>(taskId: string, sk: string): Promise<Versioned<T> | undefined> {
    const out = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: keyOf(taskId, sk), ConsistentRead: true }),
    );
    return out.Item === undefined ? undefined : fromItem<T>(out.Item);
  }

  private async putVersioned(
    taskId: string,
    sk: string,
    value: object,
    expectedVersion: number | undefined,
  ): Promise<number> {
    const fields = value as Record<string, unknown>;
    for (const name of RESERVED) {
      if (name in fields)
        throw new Error(`${itemName(taskId, sk)}: value must not have a '${name}' property`);
    }
    const version = expectedVersion === undefined ? 1 : expectedVersion + 1;
    const item = marshalItem({ ...fields, pk: taskPk(taskId), sk, version });
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: item,
          ...(expectedVersion === undefined
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : {
                ConditionExpression: '#version = :expected',
                ExpressionAttributeNames: { '#version': 'version' },
                ExpressionAttributeValues: { ':expected': { N: String(expectedVersion) } },
              }),
        }),
      );
    } catch (e) {
      if (e instanceof Error && e.name === 'ConditionalCheckFailedException') {
        throw new VersionConflictError(itemName(taskId, sk), expectedVersion);
      }
      throw e;
    }
    return version;
  }

  private async tableStatus(): Promise<string | undefined> {
    try {
      const out = await this.client.send(new DescribeTableCommand({ TableName: this.tableName }));
      return out.Table?.TableStatus ?? 'UNKNOWN';
    } catch (e) {
      if (e instanceof Error && e.name === 'ResourceNotFoundException') return undefined;
      throw accessError(e, this.tableName);
    }
  }

  private async createTable(): Promise<void> {
    try {
      await this.client.send(
        new CreateTableCommand({
          TableName: this.tableName,
          AttributeDefinitions: [
            { AttributeName: 'pk', AttributeType: 'S' },
            { AttributeName: 'sk', AttributeType: 'S' },
          ],
          KeySchema: [
            { AttributeName: 'pk', KeyType: 'HASH' },
            { AttributeName: 'sk', KeyType: 'RANGE' },
          ],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
    } catch (e) {
      // Another run created it between our describe and create: fine, wait for it like our own.
      if (e instanceof Error && e.name === 'ResourceInUseException') return;
      throw accessError(e, this.tableName);
    }
  }
}

function keyOf(taskId: string, sk: string): Record<string, AttributeValue> {
  return { pk: { S: taskPk(taskId) }, sk: { S: sk } };
}

function itemName(taskId: string, sk: string): string {
  return `${taskPk(taskId)}/${sk}`;
}

function fromItem<T>(item: Record<string, AttributeValue>): Versioned<T> {
  const { pk: _pk, sk: _sk, version, ...rest } = unmarshalItem(item);
  return { value: rest as T, version: typeof version === 'number' ? version : 0 };
}

const ACCESS_ERRORS = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'CredentialsProviderError',
]);

/** Missing or insufficient AWS credentials are the user's to fix; anything else passes through unchanged. */
function accessError(e: unknown, tableName: string): unknown {
  if (!(e instanceof Error) || !ACCESS_ERRORS.has(e.name)) return e;
  return new DtsError(
    'STATE_TABLE_ACCESS',
    `cannot use DynamoDB table ${tableName}: ${e.name}`,
    'configure AWS credentials allowed dynamodb:DescribeTable, CreateTable and item reads/writes on that table',
    { cause: e },
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DtsError } from '../../lib/errors.ts';
import { freshProgress } from '../../lib/fullsync/copy-unit.ts';
import {
  createDynamoClient,
  type LocalStore,
  openLocalStore,
  useLocalStore,
} from '../../lib/state/dynamo-client.ts';
import { startEmbeddedDynamo } from '../../lib/state/embedded-dynamo.ts';
import { localTaskIds, taskStoreDir } from '../../lib/state/local-state-dir.ts';
import {
  type TaskRecord,
  TaskStore,
  type UnitCheckpoint,
  VersionConflictError,
} from '../../lib/state/task-store.ts';

function task(taskId: string, overrides: Partial<TaskRecord> = {}): TaskRecord {
  return {
    taskId,
    name: `sync ${taskId}`,
    spec: {
      source: { url: 'redis://127.0.0.1:6379', dbs: [0, 1] },
      target: { url: 'redis://127.0.0.1:6380', tls: false, user: null },
      mode: 'full',
    },
    status: 'created',
    phase: 'validate',
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    ...overrides,
  };
}

function checkpoint(unitId: string, overrides: Partial<UnitCheckpoint> = {}): UnitCheckpoint {
  return {
    ...freshProgress(),
    unitId,
    sourceDb: 0,
    targetDb: 0,
    updatedAt: '2025-01-01T00:00:00.000Z',
    ...overrides,
  };
}

const tempDirs: string[] = [];
function tempStateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dts-state-'));
  tempDirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('TaskStore on in-memory dynalite', () => {
  let local: LocalStore;
  let store: TaskStore;

  beforeAll(async () => {
    local = await openLocalStore();
    store = local.store;
  });

  afterAll(async () => {
    await local?.close();
  });

  it('ensureTable is idempotent and creates further tables on demand', async () => {
    await store.ensureTable();
    const client = createDynamoClient({ endpoint: local.endpoint });
    try {
      const other = new TaskStore(client, 'other-table');
      await other.ensureTable();
      await other.ensureTable();
      await other.putTask(task('t-other-table'));
      expect((await other.getTask('t-other-table'))?.value.name).toBe('sync t-other-table');
      // Tables are separate: the default table does not see it.
      expect(await store.getTask('t-other-table')).toBeUndefined();
    } finally {
      client.destroy();
    }
  });

  it('creates, reads and updates a task with versions', async () => {
    const t = task('t-crud');
    expect(await store.getTask('t-crud')).toBeUndefined();
    expect(await store.putTask(t)).toBe(1);
    await expect(store.putTask(t)).rejects.toBeInstanceOf(VersionConflictError);

    const read = await store.getTask('t-crud');
    expect(read).toEqual({ value: t, version: 1 });

    const error = { code: 'SOURCE_UNREACHABLE', message: 'source down', fix: 'start it' };
    const v2 = await store.updateTask('t-crud', { status: 'failed', phase: 'fullsync', lastError: error }, 1);
    expect(v2).toBe(2);
    const afterUpdate = await store.getTask('t-crud');
    expect(afterUpdate?.version).toBe(2);
    expect(afterUpdate?.value).toMatchObject({ status: 'failed', phase: 'fullsync', lastError: error });
    expect(afterUpdate?.value.spec).toEqual(t.spec);
    expect(afterUpdate?.value.createdAt).toBe(t.createdAt);
    expect(afterUpdate?.value.updatedAt).not.toBe(t.updatedAt);

    // A stale expected version loses, and leaves the item as it was.
    await expect(store.updateTask('t-crud', { status: 'running' }, 1)).rejects.toBeInstanceOf(
      VersionConflictError,
    );
    await expect(store.putTask({ ...t, status: 'running' }, 1)).rejects.toBeInstanceOf(VersionConflictError);
    expect((await store.getTask('t-crud'))?.value.status).toBe('failed');

    // Setting a property to undefined removes it.
    const v3 = await store.updateTask('t-crud', {
      status: 'running',
      lastError: undefined,
      progress: { keys: 10 },
    });
    expect(v3).toBe(3);
    const cleared = await store.getTask('t-crud');
    expect(cleared?.value.lastError).toBeUndefined();
    expect('lastError' in (cleared?.value ?? {})).toBe(false);
    expect(cleared?.value.progress).toEqual({ keys: 10 });

    // The patch cannot move the record to another task id.
    await store.updateTask('t-crud', { taskId: 'elsewhere' } as Partial<TaskRecord>);
    expect((await store.getTask('t-crud'))?.value.taskId).toBe('t-crud');
    expect(await store.getTask('elsewhere')).toBeUndefined();
  });

  it('updateTask without a version retries conflicting writers until all land', async () => {
    await store.putTask(task('t-concurrent'));
    const writers = 6;
    const versions = await Promise.all(
      Array.from({ length: writers }, (_, i) => store.updateTask('t-concurrent', { phase: `phase-${i}` })),
    );
    // Every writer got its own version: none overwrote another's read.
    expect([...versions].sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7]);
    const final = await store.getTask('t-concurrent');
    expect(final?.version).toBe(1 + writers);
    const lastWriter = versions.indexOf(1 + writers);
    expect(final?.value.phase).toBe(`phase-${lastWriter}`);
  });

  it('updateTask on a missing task is a DtsError', async () => {
    const err = await store.updateTask('t-missing', { status: 'running' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DtsError);
    expect((err as DtsError).code).toBe('TASK_NOT_FOUND');
    expect((err as DtsError).message).toContain('t-missing');
  });

  it('round-trips checkpoints, including stamps and large offsets', async () => {
    await store.putTask(task('t-cp'));
    expect(await store.getCheckpoint('t-cp', 'db0')).toBeUndefined();
    expect(await store.listCheckpoints('t-cp')).toEqual([]);

    const a = checkpoint('shard1:db0', { cursor: '1234', targetDb: 3 });
    const b = checkpoint('db0', {
      sourceDb: 0,
      cursor: '98765',
      stamp: { replid: 'a'.repeat(40), offset: 2 ** 52 + 7 },
      keysRead: 1000,
      keysWritten: 990,
      keysVanished: 10,
      bytes: 123_456_789,
      chunks: 4,
    });
    expect(await store.putCheckpoint('t-cp', a, undefined)).toBe(1);
    expect(await store.putCheckpoint('t-cp', b, undefined)).toBe(1);
    await expect(store.putCheckpoint('t-cp', b, undefined)).rejects.toBeInstanceOf(VersionConflictError);

    expect(await store.getCheckpoint('t-cp', 'db0')).toEqual({ value: b, version: 1 });
    const bDone = { ...b, cursor: '0', done: true, chunks: 5 };
    expect(await store.putCheckpoint('t-cp', bDone, 1)).toBe(2);
    expect(await store.getCheckpoint('t-cp', 'db0')).toEqual({ value: bDone, version: 2 });

    // Ordered by unit id; the task item itself is not a checkpoint.
    expect(await store.listCheckpoints('t-cp')).toEqual([
      { value: bDone, version: 2 },
      { value: a, version: 1 },
    ]);
    // Checkpoints of one task are invisible to another.
    expect(await store.listCheckpoints('t-crud')).toEqual([]);
  });

  it('two writers racing on one checkpoint version: exactly one wins, the stored value is whole', async () => {
    await store.putTask(task('t-race'));
    let version = await store.putCheckpoint('t-race', checkpoint('db0'), undefined);
    for (let round = 0; round < 10; round++) {
      const mine = checkpoint('db0', {
        cursor: `mine-${round}`,
        keysRead: round,
        chunks: round,
        done: false,
      });
      const theirs = checkpoint('db0', {
        cursor: `theirs-${round}`,
        keysRead: 1000 + round,
        chunks: 1000 + round,
        done: true,
        stamp: { replid: 'b'.repeat(40), offset: round },
      });
      const results = await Promise.allSettled([
        store.putCheckpoint('t-race', mine, version),
        store.putCheckpoint('t-race', theirs, version),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(VersionConflictError);
      expect((won[0] as PromiseFulfilledResult<number>).value).toBe(version + 1);

      const winner = results[0]?.status === 'fulfilled' ? mine : theirs;
      const stored = await store.getCheckpoint('t-race', 'db0');
      expect(stored).toEqual({ value: winner, version: version + 1 });
      version += 1;
    }
  });

  it('two writers racing to create one checkpoint: exactly one wins', async () => {
    const results = await Promise.allSettled([
      store.putCheckpoint('t-race-create', checkpoint('db1', { cursor: 'first' }), undefined),
      store.putCheckpoint('t-race-create', checkpoint('db1', { cursor: 'second' }), undefined),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(VersionConflictError);
    const stored = await store.getCheckpoint('t-race-create', 'db1');
    expect(stored?.version).toBe(1);
    expect(stored?.value.cursor).toBe(results[0]?.status === 'fulfilled' ? 'first' : 'second');
  });

  it('keeps a shard checkpoint with a version, and dirty-set pages in order, per shard', async () => {
    const shard = {
      shardId: 'main',
      replid: 'b'.repeat(40),
      startOffset: 100,
      appliedOffset: 100,
      phase: 'catch-up',
      updatedAt: '2026-01-01T00:00:00.000Z',
    };
    expect(await store.putShard('t-shard', shard, undefined)).toBe(1);
    expect(await store.putShard('t-shard', { ...shard, appliedOffset: 250 }, 1)).toBe(2);
    await expect(store.putShard('t-shard', { ...shard, appliedOffset: 999 }, 1)).rejects.toBeInstanceOf(
      VersionConflictError,
    );
    expect(await store.getShard('t-shard', 'main')).toEqual({
      value: { ...shard, appliedOffset: 250 },
      version: 2,
    });

    const key = (i: number) => Buffer.from([0xff, i, 0x00]).toString('base64');
    for (const page of [2, 0, 1]) {
      await store.putDirtyPage('t-shard', { shardId: 'main', page, entries: [{ db: page, key: key(page) }] });
    }
    await store.putDirtyPage('t-shard', { shardId: 'other', page: 0, entries: [{ db: 9, key: key(9) }] });
    const pages = await store.listDirtyPages('t-shard', 'main');
    expect(pages.map((p) => p.page)).toEqual([0, 1, 2]);
    expect(pages[1]).toEqual({ shardId: 'main', page: 1, entries: [{ db: 1, key: key(1) }] });
    await expect(
      store.putDirtyPage('t-shard', {
        shardId: 'main',
        page: 3,
        entries: [{ db: 0, key: 'x'.repeat(400_000) }],
      }),
    ).rejects.toThrow(/split it/);

    await store.deleteDirtyPages('t-shard', 'main');
    expect(await store.listDirtyPages('t-shard', 'main')).toEqual([]);
    expect(await store.listDirtyPages('t-shard', 'other')).toHaveLength(1);
  });

  it('sets and reads the stop flag per task', async () => {
    await store.putTask(task('t-stop'));
    await store.putTask(task('t-nostop'));
    expect(await store.isStopRequested('t-stop')).toBe(false);
    await store.requestStop('t-stop');
    expect(await store.isStopRequested('t-stop')).toBe(true);
    await store.requestStop('t-stop');
    expect(await store.isStopRequested('t-stop')).toBe(true);
    expect(await store.isStopRequested('t-nostop')).toBe(false);
    // The flag is its own item: the task item keeps its version.
    expect((await store.getTask('t-stop'))?.version).toBe(1);
  });

  it('lists tasks oldest first, without checkpoints or flags', async () => {
    const client = createDynamoClient({ endpoint: local.endpoint });
    try {
      const fresh = new TaskStore(client, 'list-table');
      await fresh.ensureTable();
      expect(await fresh.listTasks()).toEqual([]);
      const later = task('t-b', { createdAt: '2025-02-01T00:00:00.000Z' });
      const earlier = task('t-a', { createdAt: '2025-01-15T00:00:00.000Z' });
      await fresh.putTask(later);
      await fresh.putTask(earlier);
      await fresh.putCheckpoint('t-a', checkpoint('db0'), undefined);
      await fresh.requestStop('t-b');
      expect(await fresh.listTasks()).toEqual([earlier, later]);
    } finally {
      client.destroy();
    }
  });

  it('deleteTask removes every item of the task and nothing else', async () => {
    await store.putTask(task('t-del'));
    await store.putTask(task('t-keep'));
    // More than one BatchWriteItem (25 items) worth.
    for (let i = 0; i < 30; i++) {
      await store.putCheckpoint('t-del', checkpoint(`db${i}`, { sourceDb: i, targetDb: i }), undefined);
    }
    await store.putCheckpoint('t-keep', checkpoint('db0'), undefined);
    await store.requestStop('t-del');
    expect(await store.listCheckpoints('t-del')).toHaveLength(30);

    await store.deleteTask('t-del');
    expect(await store.getTask('t-del')).toBeUndefined();
    expect(await store.listCheckpoints('t-del')).toEqual([]);
    expect(await store.isStopRequested('t-del')).toBe(false);
    expect((await store.getTask('t-keep'))?.version).toBe(1);
    expect(await store.listCheckpoints('t-keep')).toHaveLength(1);

    // Deleting again (nothing left) is harmless, and the id can be reused from scratch.
    await store.deleteTask('t-del');
    expect(await store.putTask(task('t-del'))).toBe(1);
  });
});

describe('embedded dynalite on disk', () => {
  const open: LocalStore[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });

  it('keeps data across close and reopen of the same state dir', async () => {
    const stateDir = join(tempStateDir(), 'nested', 'state');
    const first = await openLocalStore({ stateDir, taskId: 't-disk' });
    open.push(first);
    await first.store.putTask(task('t-disk'));
    await first.store.updateTask('t-disk', { status: 'running' });
    const cp = checkpoint('db0', { cursor: '777', stamp: { replid: 'c'.repeat(40), offset: 42 } });
    await first.store.putCheckpoint('t-disk', cp, undefined);
    await first.store.requestStop('t-disk');
    await first.close();

    const second = await openLocalStore({ stateDir, taskId: 't-disk' });
    open.push(second);
    const t = await second.store.getTask('t-disk');
    expect(t?.version).toBe(2);
    expect(t?.value.status).toBe('running');
    expect(await second.store.getCheckpoint('t-disk', 'db0')).toEqual({ value: cp, version: 1 });
    expect(await second.store.isStopRequested('t-disk')).toBe(true);
    // Versions carry on where the first run left them.
    expect(await second.store.putCheckpoint('t-disk', { ...cp, done: true }, 1)).toBe(2);
  });

  it('a reader whose run ends under it (the endpoint it read refuses) opens the store again, from its files', async () => {
    const stateDir = tempStateDir();
    const run = await openLocalStore({ stateDir, taskId: 't-ending' });
    await run.store.putTask(task('t-ending'));
    await run.close();
    // What a reader sees in the moment a run ends: its endpoint still published, its server gone.
    const closed = await startEmbeddedDynamo();
    const gone = closed.endpoint;
    await closed.close();
    const endpointFile = join(taskStoreDir(stateDir, 't-ending'), 'dynamodb.endpoint');
    writeFileSync(endpointFile, JSON.stringify({ endpoint: gone, pid: process.pid }));
    let refused = 0;
    const read = useLocalStore({ stateDir, taskId: 't-ending' }, async (store) => {
      try {
        return await store.listTasks();
      } catch (e) {
        refused++;
        rmSync(endpointFile, { force: true });
        throw e;
      }
    });
    const tasks = await read;
    expect(refused).toBeGreaterThanOrEqual(1);
    expect(tasks.map((t) => t.taskId)).toEqual(['t-ending']);
  });

  it('keeps each task of a state dir in its own store: two open at once, a second run of one refused', async () => {
    const stateDir = tempStateDir();
    const a = await openLocalStore({ stateDir, taskId: 't-a' });
    open.push(a);
    const b = await openLocalStore({ stateDir, taskId: 't-b' });
    open.push(b);
    await a.store.putTask(task('t-a'));
    await b.store.putTask(task('t-b'));
    expect((await a.store.listTasks()).map((t) => t.taskId)).toEqual(['t-a']);
    expect(await localTaskIds(stateDir)).toEqual(['t-a', 't-b']);
    const twice = await openLocalStore({ stateDir, taskId: 't-a' }).catch((e: unknown) => e);
    expect((twice as DtsError).code).toBe('TASK_RUNNING');
    expect((twice as DtsError).message).toBe(
      `task 't-a' is already running from state dir ${stateDir} (pid ${process.pid})`,
    );
    // A reader joins the store the run serves and sees what it wrote.
    const reader = await openLocalStore({ stateDir, taskId: 't-a', shared: true });
    open.push(reader);
    expect((await reader.store.getTask('t-a'))?.value.taskId).toBe('t-a');
    const dots = await openLocalStore({ stateDir, taskId: '..' }).catch((e: unknown) => e);
    expect((dots as DtsError).code).toBe('BAD_TASK_SPEC');
  });

  it('in-memory stores do not share data', async () => {
    const a = await openLocalStore();
    open.push(a);
    await a.store.putTask(task('t-mem'));
    const b = await openLocalStore();
    open.push(b);
    expect(await b.store.getTask('t-mem')).toBeUndefined();
  });

  it('refuses a state dir that this process already has open, until it is closed', async () => {
    const stateDir = tempStateDir();
    const first = await startEmbeddedDynamo({ stateDir });
    let firstClosed = false;
    try {
      const err = await startEmbeddedDynamo({ stateDir }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DtsError);
      expect((err as DtsError).code).toBe('STATE_DIR_LOCKED');
      expect((err as DtsError).message).toBe(`state dir ${stateDir} is in use by another redis-dts run`);
      expect((err as DtsError).fix).toContain('--state-dir');
      await first.close();
      firstClosed = true;
      const again = await startEmbeddedDynamo({ stateDir });
      await again.close();
    } finally {
      if (!firstClosed) await first.close();
    }
  });

  it('of two runs starting on one state dir at once, exactly one gets it', async () => {
    const stateDir = tempStateDir();
    const results = await Promise.allSettled([
      startEmbeddedDynamo({ stateDir }),
      startEmbeddedDynamo({ stateDir }),
    ]);
    const started = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    try {
      expect(started).toHaveLength(1);
      expect(refused).toHaveLength(1);
      expect(((refused[0] as PromiseRejectedResult).reason as DtsError).code).toBe('STATE_DIR_LOCKED');
      // The winner really works (its store opened, not just its port).
      const client = createDynamoClient({
        endpoint: (started[0] as PromiseFulfilledResult<{ endpoint: string }>).value.endpoint,
      });
      try {
        const s = new TaskStore(client, 'race-table');
        await s.ensureTable();
        expect(await s.putTask(task('t-race-start'))).toBe(1);
      } finally {
        client.destroy();
      }
    } finally {
      for (const r of started) await r.value.close();
    }
  });

  it('reports a damaged store as unreadable', async () => {
    const stateDir = tempStateDir();
    mkdirSync(join(stateDir, 'dynamodb'));
    // LevelDB's CURRENT names the manifest; pointing it nowhere makes the store unopenable.
    writeFileSync(join(stateDir, 'dynamodb', 'CURRENT'), 'MANIFEST-missing\n');
    const err = await startEmbeddedDynamo({ stateDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DtsError);
    expect((err as DtsError).code).toBe('STATE_DIR_UNREADABLE');
    expect((err as DtsError).message).toContain(stateDir);
  });

  it('refuses a state dir that another process has open', async () => {
    const stateDir = tempStateDir();
    const moduleUrl = new URL('../../lib/state/embedded-dynamo.ts', import.meta.url).href;
    const script = [
      `const { startEmbeddedDynamo } = await import(${JSON.stringify(moduleUrl)});`,
      `const d = await startEmbeddedDynamo({ stateDir: ${JSON.stringify(stateDir)} });`,
      `process.stdout.write('ready\\n');`,
      `process.stdin.resume();`,
      `process.stdin.on('end', async () => { await d.close(); process.exit(0); });`,
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
      expect(chunk.toString()).toBe('ready\n');
      const err = await startEmbeddedDynamo({ stateDir }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DtsError);
      expect((err as DtsError).code).toBe('STATE_DIR_LOCKED');
    } finally {
      const exited = once(child, 'exit');
      child.stdin.end();
      await exited;
    }
    // Once the other process has released it, the dir opens normally.
    const after = await startEmbeddedDynamo({ stateDir });
    await after.close();
  });
});

import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { createDynamoClient, openLocalStore } from '../../lib/state/dynamo-client.ts';
import { localTaskIds } from '../../lib/state/local-state-dir.ts';
import { runCli } from '../support/cli.ts';
import { startRedis, stopAllRedis } from '../support/redis-server.ts';

const SOURCE_PASSWORD = 'src-Pa55word-that-must-not-leak';
const TARGET_PASSWORD = 'dst-Pa55word-that-must-not-leak';
const dirs: string[] = [];

afterAll(async () => {
  await stopAllRedis();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('secrets', () => {
  it('no password given to a sync appears in its output, its stored task items, or its state files', async () => {
    const source = await startRedis({ args: ['--requirepass', SOURCE_PASSWORD], password: SOURCE_PASSWORD });
    const target = await startRedis({ args: ['--requirepass', TARGET_PASSWORD], password: TARGET_PASSWORD });
    await source.cli('SET', 'k', 'v');
    const dir = mkdtempSync(join(tmpdir(), 'redis-dts-secrets-'));
    dirs.push(dir);

    // One password in the URL, one through the environment; then a failing run, whose error is stored too.
    const ok = await runCli(
      [
        'sync',
        '--sync-type',
        'full',
        '--state-dir',
        dir,
        '--progress',
        'json',
        '--source',
        `redis://:${SOURCE_PASSWORD}@127.0.0.1:${source.port}`,
        '--target',
        `redis://127.0.0.1:${target.port}`,
      ],
      { REDIS_DTS_TARGET_PASSWORD: TARGET_PASSWORD },
    );
    expect(ok.code).toBe(0);
    const bad = await runCli(
      [
        'sync',
        '--sync-type',
        'full',
        '--state-dir',
        dir,
        '--progress',
        'json',
        '--task-id',
        'failing',
        '--source',
        `redis://:${SOURCE_PASSWORD}x@127.0.0.1:${source.port}`,
        '--target',
        `redis://127.0.0.1:${target.port}`,
      ],
      { REDIS_DTS_TARGET_PASSWORD: TARGET_PASSWORD },
    );
    expect(bad.code).toBe(1);
    const status = await runCli(['status', '--json', '--state-dir', dir]);
    const list = await runCli(['list', '--json', '--state-dir', dir]);

    // Every item of every task's store (each task of a state dir has its own).
    const taskIds = await localTaskIds(dir);
    expect(taskIds).toEqual([`127.0.0.1-${source.port}-to-127.0.0.1-${target.port}`, 'failing'].sort());
    const items: unknown[] = [];
    for (const taskId of taskIds) {
      const local = await openLocalStore({ stateDir: dir, taskId });
      const scanned = await createDynamoClient({ endpoint: local.endpoint }).send(
        new ScanCommand({ TableName: local.store.tableName }),
      );
      await local.close();
      items.push(...(scanned.Items ?? []));
    }
    const stored = JSON.stringify(items);
    expect(stored).toContain('"failing"');
    expect(stored).toContain('"source"');

    const everything = [ok.stdout, ok.stderr, bad.stdout, bad.stderr, status.stdout, list.stdout, stored];
    for (const file of filesUnder(dir)) everything.push(readFileSync(file).toString('latin1'));
    for (const text of everything) {
      expect(text).not.toContain(SOURCE_PASSWORD);
      expect(text).not.toContain(TARGET_PASSWORD);
    }
  });
});

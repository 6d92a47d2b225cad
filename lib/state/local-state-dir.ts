import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DtsError } from '../errors.ts';

/**
 * A local state directory holds one embedded store per task, `<stateDir>/tasks/<taskId>/`, each with its
 * own lock and published endpoint. So several `redis-dts sync` runs with different tasks share one
 * folder without one process's exit taking another's store away (joining one shared server would), a
 * second run of the *same* task meets that task's lock, and `status`/`list`/`stop` read every task: a
 * running one through the endpoint its run publishes, a finished one from its files.
 */
const TASKS_DIR = 'tasks';
/** Where this layout's predecessor kept one store for every task. */
const SHARED_STORE_DIR = 'dynamodb';

export function taskStoreDir(stateDir: string, taskId: string): string {
  // Ids are 1..64 of [A-Za-z0-9_.-] (the spec's rule); only these two could name another folder.
  if (taskId === '.' || taskId === '..') {
    throw new DtsError(
      'BAD_TASK_SPEC',
      `task id '${taskId}' cannot name a folder of the state directory`,
      'give the task an id with a letter or digit (--task-id)',
    );
  }
  return join(resolve(stateDir), TASKS_DIR, taskId);
}

/** The ids of the tasks this state directory holds a store for, sorted. */
export async function localTaskIds(stateDir: string): Promise<string[]> {
  refuseSharedLayout(stateDir);
  try {
    const entries = await readdir(join(resolve(stateDir), TASKS_DIR), { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

export function hasLocalTask(stateDir: string, taskId: string): boolean {
  return existsSync(taskStoreDir(stateDir, taskId));
}

/**
 * A state directory written by an earlier redis-dts, with one store for all its tasks: reading past it
 * would make its tasks look gone (and a rerun start afresh), so it is refused, saying what to do.
 */
export function refuseSharedLayout(stateDir: string): void {
  const shared = join(resolve(stateDir), SHARED_STORE_DIR);
  if (!existsSync(shared)) return;
  throw new DtsError(
    'STATE_DIR_OLD_LAYOUT',
    `state dir ${stateDir} keeps every task in one store (${shared}), as an earlier redis-dts wrote it`,
    `finish its tasks with the redis-dts that started them, or move ${shared} away to start those tasks afresh`,
  );
}

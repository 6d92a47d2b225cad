/**
 * Key layout of the single task table: every item of a task shares `pk`, so one Query reads (or deletes)
 * a whole task, and `sk` says what the item is.
 */

export function taskPk(taskId: string): string {
  requireId('taskId', taskId);
  return `task#${taskId}`;
}

export const TASK_SK = 'task';
export const STOP_SK = 'stop';
export const CUT_OVER_SK = 'cutover';
export const UNIT_SK_PREFIX = 'unit#';

export function unitSk(unitId: string): string {
  requireId('unitId', unitId);
  // '#' separates the parts of dirty#<unitId>#<page>, so it cannot appear inside a unit id.
  if (unitId.includes('#')) throw new Error(`unitId must not contain '#': ${unitId}`);
  return `${UNIT_SK_PREFIX}${unitId}`;
}

export const SHARD_SK_PREFIX = 'shard#';
export const DIRTY_SK_PREFIX = 'dirty#';

export function shardSk(shardId: string): string {
  requireId('shardId', shardId);
  if (shardId.includes('#')) throw new Error(`shardId must not contain '#': ${shardId}`);
  return `${SHARD_SK_PREFIX}${shardId}`;
}

/** Pages sort by number within a shard: dirty#<shardId>#000042. */
export function dirtyPageSk(shardId: string, page: number): string {
  shardSk(shardId);
  return `${DIRTY_SK_PREFIX}${shardId}#${String(page).padStart(6, '0')}`;
}

function requireId(what: string, id: string): void {
  if (typeof id !== 'string' || id.length === 0) throw new Error(`${what} must be a non-empty string`);
}

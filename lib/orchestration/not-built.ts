import { DtsError } from '../errors.ts';

/** A state whose core does not exist yet: the machine's Catch turns this into a failed task with this message. */
export function notBuilt(what: string): DtsError {
  return new DtsError(
    'NOT_BUILT',
    `${what} is not built yet`,
    'run a full-only task (syncType "full") for now',
  );
}

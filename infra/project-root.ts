import { fileURLToPath } from 'node:url';

/** The repository root (with a trailing /): Lambda entries, the lock file and the replicator's build context. */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root (with a trailing /): Lambda entries, the lock file and the replicator's build context.
 * Found by walking up to redis-dts' own package.json, so it holds whether this module runs from the
 * sources (infra/) or from the build (dist/infra/), in this checkout or in a user's node_modules.
 */
export const PROJECT_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'redis-dts'
    ) {
      return `${dir}/`;
    }
    if (dirname(dir) === dir) throw new Error(`redis-dts: no package.json of redis-dts above ${from}`);
  }
}

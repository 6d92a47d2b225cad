import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { synthTestStack } from './synth-stack.ts';

describe('Lambda bundles', () => {
  // The one test that runs esbuild (local, no Docker) for every function, as `cdk synth` does.
  it('every function bundles into an ES module that loads and exports its handler', async () => {
    const { app, stack } = synthTestStack({ bundle: true });
    const out = app.synth().directory;
    const bundles = readdirSync(out)
      .filter((d) => d.startsWith('asset.'))
      .map((d) => join(out, d, 'index.mjs'))
      .filter((f) => existsSync(f));
    // The step functions and the Cut Over Task rule's function.
    expect(bundles).toHaveLength(Object.keys(stack.dts.functions).length + 1);
    for (const file of bundles) {
      // Loading proves no native module (the embedded DynamoDB's LevelDB) or CommonJS require broke in.
      const mod = (await import(pathToFileURL(file).href)) as { handler?: unknown };
      expect(typeof mod.handler, file).toBe('function');
    }
    // esbuild for nine functions on a busy 2-core machine: a generous bound, not a performance check.
  }, 300_000);
});

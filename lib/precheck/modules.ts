import type { Redis } from 'ioredis';
import { classifyAdminError } from '../redis/admin-client.ts';
import { addressOf, isCommandUnavailable, listWords } from './server-facts.ts';
import { type PrecheckCheck, sideOf } from './types.ts';

export interface LoadedModule {
  name: string;
  ver: number;
}

export const modulesCheck: PrecheckCheck = {
  id: 'modules',
  title: 'Modules',
  needs: ['source', 'target'],
  // The nodes of a cluster load the same modules in practice (slots move between them), so the seeds speak for them.
  seedOnly: true,
  async run(ctx) {
    const sourceSide = sideOf(ctx, 'source');
    const targetSide = sideOf(ctx, 'target');
    const source = await listModules(sourceSide.client);
    const target = await listModules(targetSide.client);
    const seeds = [sourceSide, targetSide]
      .filter((s) => s.info.clusterEnabled)
      .map((s) => `${s.ep.role === 'source' ? 'source' : 'destination'} node ${addressOf(s.ep)}`);
    const onSeeds = seeds.length > 0 ? `; cluster modules were read on the ${listWords(seeds)} only` : '';
    if (source.modules.length === 0) {
      return { status: 'passed', detail: `no modules are loaded on the source (${source.how})${onSeeds}` };
    }
    const names = source.modules.map((m) => `${m.name} ${m.ver}`);
    const have = new Set(target.modules.map((m) => m.name.toLowerCase()));
    const missing = source.modules.filter((m) => !have.has(m.name.toLowerCase())).map((m) => m.name);
    if (missing.length > 0) {
      return {
        status: 'failed',
        detail: `the source has module${missing.length === 1 ? '' : 's'} ${listWords(missing)} that the destination lacks (${target.how}): keys of their types cannot be restored there${onSeeds}`,
        fix: `load ${listWords(missing)} on the destination (loadmodule, or the provider's module option) in the same or a newer version, or leave keys of module types out with --exclude-prefix`,
      };
    }
    return {
      status: 'passed',
      detail: `the destination has every module of the source (${listWords(names)})${onSeeds}`,
    };
  },
};

/**
 * MODULE LIST, or the Modules section of INFO where managed services disable MODULE: the section
 * lists the same modules and INFO is always allowed (the connection needed it).
 */
export async function listModules(client: Redis): Promise<{ modules: LoadedModule[]; how: string }> {
  try {
    const reply = (await client.call('MODULE', 'LIST')) as unknown[];
    return { modules: reply.map(moduleFromList), how: 'MODULE LIST' };
  } catch (e) {
    if (!isCommandUnavailable(e)) throw classifyAdminError(client, e, 'MODULE LIST');
  }
  let text: string;
  try {
    text = await client.info('modules');
  } catch (e) {
    throw classifyAdminError(client, e, 'INFO modules');
  }
  const modules: LoadedModule[] = [];
  for (const m of text.matchAll(/^module:name=([^,\r\n]+),ver=(\d+)/gm)) {
    modules.push({ name: m[1]!, ver: Number(m[2]) });
  }
  return { modules, how: 'MODULE LIST is unavailable: read from INFO modules' };
}

function moduleFromList(entry: unknown): LoadedModule {
  const flat = Array.isArray(entry) ? entry.map(String) : [];
  const at = (field: string) => {
    const i = flat.indexOf(field);
    return i >= 0 ? flat[i + 1] : undefined;
  };
  return { name: at('name') ?? 'unknown', ver: Number(at('ver') ?? 0) };
}

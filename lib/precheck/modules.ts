import type { Redis } from 'ioredis';
import { classifyAdminError } from '../redis/admin-client.ts';
import { isCommandUnavailable, listWords } from './server-facts.ts';
import { type PrecheckCheck, sideOf } from './types.ts';

export interface LoadedModule {
  name: string;
  ver: number;
}

export const modulesCheck: PrecheckCheck = {
  id: 'modules',
  title: 'Modules',
  needs: ['source', 'target'],
  async run(ctx) {
    const source = await listModules(sideOf(ctx, 'source').client);
    const target = await listModules(sideOf(ctx, 'target').client);
    if (source.modules.length === 0) {
      return { status: 'passed', detail: `no modules are loaded on the source (${source.how})` };
    }
    const names = source.modules.map((m) => `${m.name} ${m.ver}`);
    const have = new Set(target.modules.map((m) => m.name.toLowerCase()));
    const missing = source.modules.filter((m) => !have.has(m.name.toLowerCase())).map((m) => m.name);
    if (missing.length > 0) {
      return {
        status: 'failed',
        detail: `the source has module${missing.length === 1 ? '' : 's'} ${listWords(missing)} that the destination lacks (${target.how}): keys of their types cannot be restored there`,
        fix: `load ${listWords(missing)} on the destination (loadmodule, or the provider's module option) in the same or a newer version, or leave keys of module types out with --exclude-prefix`,
      };
    }
    return {
      status: 'passed',
      detail: `the destination has every module of the source (${listWords(names)})`,
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

import type { BeginSearch, CommandInfo, FindKeys, KeySpec } from './catalogue-types.ts';

/**
 * Reads a `COMMAND` reply into CommandInfo entries, subcommands flattened as `container|sub`.
 * Each command's info is [name, arity, flags, first, last, step, acl categories (6.0+), tips (7.0+),
 * key specs (7.0+), subcommands (7.0+), …]; key specs and their parts are maps, which RESP2 sends as
 * flat [k, v, k, v] arrays and RESP3 clients may hand over as Map or object. Later fields are ignored.
 * Throws on a reply that is not shaped like this, so the caller can fall back to the table.
 */
export function parseCommandReply(reply: unknown): CommandInfo[] {
  if (!Array.isArray(reply)) throw new Error('COMMAND reply is not an array');
  const out: CommandInfo[] = [];
  for (const entry of reply) {
    // A renamed-away command can leave a nil in the reply of some servers.
    if (entry === null || entry === undefined) continue;
    parseEntry(entry, out);
  }
  return out;
}

function parseEntry(entry: unknown, out: CommandInfo[]): void {
  if (!Array.isArray(entry) || entry.length < 6)
    throw new Error('COMMAND entry is not an array of 6+ fields');
  const name = text(entry[0], 'name').toLowerCase();
  const info: CommandInfo = {
    name,
    arity: int(entry[1], `${name} arity`),
    flags: list(entry[2], `${name} flags`).map((f) => text(f, `${name} flag`)),
  };
  if (entry.length >= 9) {
    info.keySpecs = list(entry[8], `${name} key specs`).map((s) => parseKeySpec(s, name));
  } else {
    info.legacyKeys = {
      first: int(entry[3], `${name} first key`),
      last: int(entry[4], `${name} last key`),
      step: int(entry[5], `${name} key step`),
    };
  }
  out.push(info);
  if (entry.length >= 10) {
    const subs = list(entry[9], `${name} subcommands`);
    if (subs.length > 0) {
      const before = out.length;
      for (const sub of subs) parseEntry(sub, out);
      // The server lists them in hash-table order; sorted, two replies of one server compare equal.
      info.subcommands = out
        .slice(before)
        .map((s) => s.name)
        .sort();
    }
  }
}

function parseKeySpec(raw: unknown, command: string): KeySpec {
  const where = `${command} key spec`;
  const spec = record(raw, where);
  const begin = record(spec.begin_search, `${where} begin_search`);
  const find = record(spec.find_keys, `${where} find_keys`);
  return {
    flags: list(spec.flags ?? [], `${where} flags`).map((f) => text(f, `${where} flag`)),
    begin: parseBegin(text(begin.type, `${where} begin type`), record(begin.spec ?? [], where), where),
    find: parseFind(text(find.type, `${where} find type`), record(find.spec ?? [], where), where),
  };
}

function parseBegin(type: string, spec: Record<string, unknown>, where: string): BeginSearch {
  if (type === 'index') return { type, index: int(spec.index, `${where} index`) };
  if (type === 'keyword') {
    return {
      type,
      keyword: text(spec.keyword, `${where} keyword`),
      startFrom: int(spec.startfrom, `${where} startfrom`),
    };
  }
  return { type: 'unknown' };
}

function parseFind(type: string, spec: Record<string, unknown>, where: string): FindKeys {
  if (type === 'range') {
    return {
      type,
      lastKey: int(spec.lastkey, `${where} lastkey`),
      keyStep: int(spec.keystep, `${where} keystep`),
      limit: int(spec.limit, `${where} limit`),
    };
  }
  if (type === 'keynum') {
    return {
      type,
      keyNumIdx: int(spec.keynumidx, `${where} keynumidx`),
      firstKey: int(spec.firstkey, `${where} firstkey`),
      keyStep: int(spec.keystep, `${where} keystep`),
    };
  }
  return { type: 'unknown' };
}

function record(v: unknown, what: string): Record<string, unknown> {
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [text(k, what), x]));
  if (Array.isArray(v)) {
    if (v.length % 2 !== 0) throw new Error(`${what} is not a map`);
    const out: Record<string, unknown> = {};
    for (let i = 0; i < v.length; i += 2) out[text(v[i], what)] = v[i + 1];
    return out;
  }
  if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) return v as Record<string, unknown>;
  throw new Error(`${what} is not a map`);
}

function list(v: unknown, what: string): unknown[] {
  if (Array.isArray(v)) return v;
  if (v instanceof Set) return [...v];
  throw new Error(`${what} is not an array`);
}

function text(v: unknown, what: string): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  throw new Error(`${what} is not a string`);
}

function int(v: unknown, what: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' || Buffer.isBuffer(v) ? Number(String(v)) : NaN;
  if (!Number.isInteger(n)) throw new Error(`${what} is not an integer`);
  return n;
}

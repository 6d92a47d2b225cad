import type { z } from 'zod';
import { DtsError } from '../errors.ts';
import { redactUrl } from '../redis/url.ts';

/**
 * Turns zod issues on a task spec into one line per problem: `<path>: expected <what>, got <given>`.
 * Schemas carry their expectation as the issue message ("an integer 1..65535"), so the wording lives
 * next to the rule; this file only knows where a value sits and how to show it without leaking secrets.
 */

export const MINIMAL_TASK_SPEC =
  '{"source": {"url": "redis://src:6379"}, "target": {"url": "redis://dst:6379"}}';
export const TASK_SPEC_FIX = `see schema/task-spec.schema.json for every field; a minimal spec: ${MINIMAL_TASK_SPEC}`;

export class TaskSpecError extends DtsError {
  /** One line per problem, in the order found: `source.port: expected an integer 1..65535, got "abc"`. */
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    // One problem stays on one line; several get a header and a line each.
    const message =
      problems.length === 0
        ? 'invalid task spec'
        : problems.length === 1
          ? `invalid task spec: ${problems[0]}`
          : [`invalid task spec (${problems.length} problems):`, ...problems.map((p) => `  ${p}`)].join('\n');
    super('BAD_TASK_SPEC', message, TASK_SPEC_FIX);
    this.problems = problems;
  }
}

/** Values of these fields are never shown, valid or not: a password typed into the wrong one is still a password. */
const SECRET_FIELDS = new Set(['password', 'passwordEnv', 'passwordSecretArn']);

type Path = readonly PropertyKey[];
type Issue = z.core.$ZodIssue;
type Schema = z.core.$ZodType;

interface Where {
  /** The whole input, for showing the value an issue is about. */
  input: unknown;
  /** Path of `schema` inside the input; issue paths are relative to it. */
  base: Path;
  schema: Schema;
}

export function describeTaskSpecIssues(issues: readonly Issue[], input: unknown, schema: Schema): string[] {
  const where: Where = { input, base: [], schema };
  return issues.flatMap((issue) => describeIssue(issue, where));
}

function describeIssue(issue: Issue, where: Where): string[] {
  const path = [...where.base, ...issue.path];
  const at = formatPath(path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = shapeKeys(schemaAt(where.schema, issue.path));
      return issue.keys.map((key) => `${formatPath([...path, key])}: unknown field${suggestion(key, known)}`);
    }
    case 'invalid_union':
      return describeUnion(issue, where);
    case 'invalid_key': {
      const what = issue.issues[0]?.message ?? issue.message;
      return [`${at}: expected ${what}, got ${JSON.stringify(String(path.at(-1)))}`];
    }
    case 'custom': {
      const params = issue.params as { line?: boolean; got?: string } | undefined;
      if (params?.line) return [`${at}: ${issue.message}`];
      const got = params?.got ?? describeValue(valueAt(where.input, path), path);
      return [`${at}: expected ${issue.message}, got ${got}`];
    }
    default:
      return [`${at}: expected ${issue.message}, got ${describeValue(valueAt(where.input, path), path)}`];
  }
}

/**
 * An endpoint is `{url…}` or `{host…}`: each option of the union is picked by its first field. Reporting
 * the option the user evidently meant beats zod's "no option matched", which hides the real problem.
 */
function describeUnion(issue: z.core.$ZodIssueInvalidUnion, where: Where): string[] {
  const path = [...where.base, ...issue.path];
  const at = formatPath(path);
  const value = valueAt(where.input, path);
  const union = schemaAt(where.schema, issue.path);
  const options = unionOptions(union);
  if (!isRecord(value) || options === undefined || options.length !== issue.errors.length) {
    return [`${at}: expected ${issue.message}, got ${describeValue(value, path)}`];
  }
  const selectors = options.map((o) => shapeKeys(o)[0] ?? '');
  const chosen = selectors.flatMap((s, i) => (Object.hasOwn(value, s) ? [i] : []));
  if (chosen.length > 1) {
    return [
      `${at}: expected either ${selectors.join(' or ')}, got ${chosen.map((i) => selectors[i]).join(' and ')}`,
    ];
  }
  const allKeys = [...new Set(options.flatMap(shapeKeys))];
  if (chosen.length === 0) {
    // Report the last option's other problems (often a misspelt selector, which the suggestion names).
    const last = options.length - 1;
    const lines = [`${at}: expected ${selectors.join(' or ')}, got neither`];
    for (const inner of issue.errors[last] ?? []) {
      if (inner.code === 'invalid_type' && inner.path.length === 1 && inner.path[0] === selectors[last])
        continue;
      if (inner.code === 'unrecognized_keys') {
        lines.push(
          ...inner.keys.map((k) => `${formatPath([...path, k])}: unknown field${suggestion(k, allKeys)}`),
        );
        continue;
      }
      lines.push(...describeIssue(inner, { input: where.input, base: path, schema: options[last]! }));
    }
    return lines;
  }
  const i = chosen[0]!;
  const selector = selectors[i]!;
  const own = shapeKeys(options[i]!);
  const others = allKeys.filter((k) => !own.includes(k));
  const lines: string[] = [];
  for (const inner of issue.errors[i] ?? []) {
    if (inner.code === 'unrecognized_keys' && inner.path.length === 0) {
      for (const k of inner.keys) {
        lines.push(
          others.includes(k)
            ? `${formatPath([...path, k])}: not allowed with ${selector} (give either ${selector} or ${others.join('/')})`
            : `${formatPath([...path, k])}: unknown field${suggestion(k, own)}`,
        );
      }
      continue;
    }
    lines.push(...describeIssue(inner, { input: where.input, base: path, schema: options[i]! }));
  }
  return lines;
}

/** `source.port`, `dbs[2]`, `dbMap["0"]`; the empty path is the spec itself. */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_$][\w$]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out === '' ? 'task spec' : out;
}

/** How a given value reads in a message, masked where it may be a secret. */
export function describeValue(value: unknown, path: Path): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  const field = path.at(-1);
  const secret = typeof field === 'string' && SECRET_FIELDS.has(field);
  if (typeof value === 'string') {
    // A whole spec passed as a string may hold passwords anywhere in it.
    if (secret || path.length === 0) return secret ? '"***"' : 'a string';
    // Any string may be a URL with a password pasted into the wrong field.
    const shown = redactUrl(value);
    return JSON.stringify(shown.length > 80 ? `${shown.slice(0, 77)}...` : shown);
  }
  if (secret) return kindOf(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return kindOf(value);
}

function kindOf(value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : 'an array';
  if (value === null) return 'null';
  const type = typeof value;
  return type === 'object' || type === 'undefined' ? `an ${type}` : `a ${type}`;
}

/** ` (did you mean syncType?)` when a known field is a likely intended spelling, else ''. */
export function suggestion(key: string, known: readonly string[]): string {
  const norm = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');
  const wanted = norm(key);
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const d = editDistance(wanted, norm(candidate));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const limit = wanted.length <= 4 ? 1 : wanted.length <= 8 ? 2 : 3;
  return best !== undefined && bestDistance <= limit ? ` (did you mean ${best}?)` : '';
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent transpositions. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

function valueAt(input: unknown, path: Path): unknown {
  let v = input;
  for (const seg of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Walking the schema by its definition (zod's documented `_zod.def`) finds the field names allowed where
// an unknown one was given, for the "did you mean" suggestion.
interface LooseDef {
  type: string;
  innerType?: Schema;
  in?: Schema;
  shape?: Record<string, Schema>;
  element?: Schema;
  valueType?: Schema;
  options?: readonly Schema[];
}

const defOf = (s: Schema): LooseDef => s._zod.def as unknown as LooseDef;

function unwrap(schema: Schema): Schema {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (def.innerType !== undefined) s = def.innerType;
    else if (def.type === 'pipe' && def.in !== undefined) s = def.in;
    else return s;
  }
}

function schemaAt(schema: Schema, path: Path): Schema | undefined {
  let s: Schema | undefined = schema;
  for (const seg of path) {
    if (s === undefined) return undefined;
    const def = defOf(unwrap(s));
    if (def.type === 'object') s = def.shape?.[String(seg)];
    else if (def.type === 'array') s = def.element;
    else if (def.type === 'record') s = def.valueType;
    else return undefined;
  }
  return s;
}

function shapeKeys(schema: Schema | undefined): string[] {
  if (schema === undefined) return [];
  const def = defOf(unwrap(schema));
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

function unionOptions(schema: Schema | undefined): readonly Schema[] | undefined {
  if (schema === undefined) return undefined;
  const def = defOf(unwrap(schema));
  return def.type === 'union' ? def.options : undefined;
}

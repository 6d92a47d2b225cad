import { z } from 'zod';

// Small builders so that no schema falls back to zod's own wording, which the line format of
// spec-errors.ts cannot use: every issue carries its expectation as its message.

export const MAX_DB = 255;

export const text = (what = 'a non-empty string') => z.string({ error: what }).min(1, { error: what });
export const flag = () => z.boolean({ error: 'true or false' });
export const intIn = (min: number, max: number, what = `an integer ${min}..${max}`) =>
  z.int({ error: what }).min(min, { error: what }).max(max, { error: what });
export const positive = (what = 'a number greater than 0') =>
  z.number({ error: what }).positive({ error: what });
export const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `one of ${values.join(', ')}` });
export const dbNumber = () => intIn(0, MAX_DB);
export const fraction = (what = 'a number greater than 0 and at most 1') =>
  z.number({ error: what }).gt(0, { error: what }).max(1, { error: what });

/** An issue whose message is the whole line after the path (for rules that span fields). */
export function lineIssue(ctx: z.core.$RefinementCtx, path: PropertyKey[], message: string): void {
  ctx.addIssue({ code: 'custom', path, message, params: { line: true } });
}

// Cross-field rules run even when a field failed, so one pass lists every problem.
export const always = { when: () => true };

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

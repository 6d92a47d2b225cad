const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * `500ms`, `10s`, `2m`, `1h` or a plain number of milliseconds. Anything else is passed on as given, so
 * the spec schema (or the command) names it in its error instead of a guess being made.
 */
export function durationMs(text: string): number | string {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(text);
  if (!m) return text;
  return Math.round(Number(m[1]) * UNITS[(m[2] ?? 'ms').toLowerCase()]!);
}

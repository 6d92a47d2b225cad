import { keyLabel } from './describe.ts';
import { CATEGORIES, type CategoryReport, type DifferenceCategory, type Finding } from './verify-types.ts';

interface Tracked {
  unit: number;
  key: Buffer;
  findings: Finding[];
}

export interface UnitDbs {
  sourceDb: number;
  targetDb: number;
}

/**
 * The keys that differ, remembered so later rounds re-check only them. Memory is bounded by maxTracked:
 * past it, differences are counted (with examples) but not re-checked, and the report says so.
 */
export class DifferenceTracker {
  private readonly maxTracked: number;
  private readonly maxExamples: number;
  private readonly units: readonly UnitDbs[];
  private readonly tracked = new Map<string, Tracked>();
  private readonly untracked = emptyCategories();
  private untrackedKeys = 0;

  constructor(units: readonly UnitDbs[], o: { maxTracked: number; maxExamples: number }) {
    this.units = units;
    this.maxTracked = o.maxTracked;
    this.maxExamples = o.maxExamples;
  }

  get size(): number {
    return this.tracked.size;
  }

  get truncated(): boolean {
    return this.untrackedKeys > 0;
  }

  /** Sets the key's findings (a later result replaces an earlier one); undefined or [] clears it. */
  set(unit: number, key: Buffer, findings: Finding[] | undefined): void {
    const id = `${unit}:${key.toString('latin1')}`;
    if (!findings || findings.length === 0) {
      this.tracked.delete(id);
      return;
    }
    const known = this.tracked.get(id);
    if (known) {
      known.findings = findings;
      return;
    }
    if (this.tracked.size < this.maxTracked) {
      // A copy: the key is a view into a socket read that must not stay alive with it.
      this.tracked.set(id, { unit, key: Buffer.from(key), findings });
      return;
    }
    this.untrackedKeys++;
    for (const f of findings) this.add(this.untracked[f.category], unit, key, f);
  }

  /** Keys of a unit still differing, in the order they were found. */
  keysOf(unit: number): Buffer[] {
    const keys: Buffer[] = [];
    for (const t of this.tracked.values()) if (t.unit === unit) keys.push(t.key);
    return keys;
  }

  summarize(): { keysDiffering: number; categories: Record<DifferenceCategory, CategoryReport> } {
    const categories = emptyCategories();
    for (const t of this.tracked.values()) {
      for (const f of t.findings) this.add(categories[f.category], t.unit, t.key, f);
    }
    for (const c of CATEGORIES) {
      const u = this.untracked[c];
      const r = categories[c];
      r.count += u.count;
      for (let i = 0; i < u.examples.length && r.examples.length < this.maxExamples; i++) {
        r.examples.push(u.examples[i]!);
        r.details.push(u.details[i]!);
      }
    }
    return { keysDiffering: this.tracked.size + this.untrackedKeys, categories };
  }

  private add(r: CategoryReport, unit: number, key: Buffer, f: Finding): void {
    r.count++;
    if (r.examples.length >= this.maxExamples) return;
    const u = this.units[unit]!;
    r.examples.push(keyLabel(u.sourceDb, u.targetDb, key));
    r.details.push(f.detail);
  }
}

export function emptyCategories(): Record<DifferenceCategory, CategoryReport> {
  const out = {} as Record<DifferenceCategory, CategoryReport>;
  for (const c of CATEGORIES) out[c] = { count: 0, examples: [], details: [] };
  return out;
}

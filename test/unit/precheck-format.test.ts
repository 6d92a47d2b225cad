import { describe, expect, it } from 'vitest';
import { formatPrecheckReport, wrap } from '../../lib/precheck/format-report.ts';
import type { PrecheckReport } from '../../lib/precheck/types.ts';

const LONG_DETAIL =
  'db 0 has 12 keys ("old:01", "old:02", "old:03", "old:04", "old:05", "old:06", "old:07", "old:08", ' +
  '"old:09", "old:10", …): --existing-keys block refuses a destination that holds keys';

const report: PrecheckReport = {
  status: 'failed',
  source: {
    address: '10.0.0.5:6379',
    version: 'Redis 7.2.4',
    role: 'master',
    clusterEnabled: false,
    usedMemory: 1_000_000,
    maxmemory: 0,
    dbs: [0],
  },
  target: {
    address: '10.0.1.7:6380',
    version: 'Valkey 8.0.1',
    role: 'master',
    clusterEnabled: false,
    usedMemory: 900_000,
    maxmemory: 0,
    dbs: [0],
  },
  items: [
    { id: 'source-connect', title: 'Source reachable and authenticated', status: 'passed', detail: 'ok' },
    {
      id: 'existing-keys',
      title: 'Existing keys in the destination',
      status: 'failed',
      detail: LONG_DETAIL,
      fix: 'empty those dbs, map to empty ones with --db-map, or pass --existing-keys overwrite',
    },
    {
      id: 'target-eviction',
      title: 'Destination eviction policy',
      status: 'warning',
      detail: 'maxmemory-policy is allkeys-lru',
      fix: 'CONFIG SET maxmemory-policy noeviction',
    },
    { id: 'repl-backlog', title: 'Source replication backlog', status: 'skipped', detail: 'syncType full' },
    // A fix on a passed item is advice nobody needs to act on: not printed.
    { id: 'modules', title: 'Modules', status: 'passed', detail: 'no modules', fix: 'never shown' },
  ],
};

describe('formatPrecheckReport', () => {
  const text = formatPrecheckReport(report, { width: 100 });
  const lines = text.split('\n');

  it('names both servers, then a header and one row per item in order', () => {
    expect(lines[0]).toBe(
      'Precheck: source 10.0.0.5:6379 (Redis 7.2.4) → destination 10.0.1.7:6380 (Valkey 8.0.1)',
    );
    expect(lines[2]).toMatch(/^Item +Status +Detail$/);
    const rows = lines.filter((l) => /^\S/.test(l) && !l.startsWith('Precheck') && !l.startsWith('Result'));
    expect(rows.map((l) => l.split(/ {2,}/)[0])).toEqual([
      'Item',
      'Source reachable and authenticated',
      'Existing keys in the destination',
      'Destination eviction policy',
      'Source replication backlog',
      'Modules',
    ]);
    expect(rows.map((l) => l.split(/ {2,}/)[1])).toEqual([
      'Status',
      'Passed',
      'Failed',
      'Warning',
      'Skipped',
      'Passed',
    ]);
  });

  const detailAt = lines[2]!.indexOf('Detail');

  /** The item's detail and fix, each unwrapped, read back from its row and the lines under it. */
  function block(title: string): { detail: string; fix?: string } {
    const at = lines.findIndex((l) => l.startsWith(title));
    const rest = lines.slice(at + 1);
    const under = rest.slice(
      0,
      rest.findIndex((l) => !l.startsWith(' ')),
    );
    const fixAt = under.findIndex((l) => l.slice(detailAt).startsWith('fix: '));
    const detailLines = [lines[at]!, ...(fixAt >= 0 ? under.slice(0, fixAt) : under)];
    const fixLines = fixAt >= 0 ? under.slice(fixAt) : [];
    const join = (ls: string[]) => ls.map((l) => l.slice(detailAt).trim()).join(' ');
    return { detail: join(detailLines), ...(fixLines.length > 0 ? { fix: join(fixLines).slice(5) } : {}) };
  }

  it('aligns the status and detail columns, and wraps within the width under the detail column', () => {
    const statusAt = lines[2]!.indexOf('Status');
    for (const line of lines.slice(3)) {
      if (line === '' || line.startsWith('Result')) continue;
      expect(line.length).toBeLessThanOrEqual(100);
      if (/^\S/.test(line)) {
        expect(line.slice(statusAt)).toMatch(/^(Passed|Failed|Warning|Skipped) /);
        expect(line[detailAt - 1]).toBe(' ');
        expect(line[detailAt]).not.toBe(' ');
      } else {
        expect(line.slice(0, detailAt).trim()).toBe('');
      }
    }
    expect(lines.filter((l) => l.includes('"old:')).length).toBeGreaterThan(1);
    expect(block('Existing keys').detail).toBe(LONG_DETAIL);
  });

  it('puts the fix under each warning and failure only, continuation lines hanging under its text', () => {
    expect(block('Existing keys').fix).toBe(
      'empty those dbs, map to empty ones with --db-map, or pass --existing-keys overwrite',
    );
    expect(block('Destination eviction').fix).toBe('CONFIG SET maxmemory-policy noeviction');
    expect(block('Modules').fix).toBeUndefined();
    expect(block('Source replication backlog').fix).toBeUndefined();
    expect(text).not.toContain('never shown');
    const fixStart = lines.findIndex((l) => l.slice(detailAt).startsWith('fix: empty'));
    expect(lines[fixStart + 1]!.slice(0, detailAt + 5).trim()).toBe('');
    expect(lines[fixStart + 1]![detailAt + 5]).not.toBe(' ');
  });

  it('ends with the verdict and the counts', () => {
    expect(lines.at(-2)).toBe('Result: Failed (1 failed, 1 warning, 2 passed, 1 skipped)');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('without server summaries (nothing connected) prints the table alone', () => {
    const bare = formatPrecheckReport({ status: 'passed', items: [report.items[0]!] });
    expect(bare.split('\n')[0]).toMatch(/^Item +Status +Detail$/);
    expect(bare).toContain('Result: Passed (1 passed)');
  });
});

describe('wrap', () => {
  it('breaks at spaces within the width and keeps a longer word whole on its own line', () => {
    expect(wrap('aa bb cc dd', 5)).toEqual(['aa bb', 'cc dd']);
    expect(wrap('a verylongword b', 6)).toEqual(['a', 'verylongword', 'b']);
    expect(wrap('', 10)).toEqual(['']);
  });
});

import { describe, expect, it } from 'vitest';
import { tableCatalogue } from '../../lib/commands/catalogue.ts';
import { filterCommand } from '../../lib/commands/command-filter.ts';
import { makeKeyFilter } from '../../lib/commands/key-filter.ts';
import { clientForm, REPLICA_RELAXATIONS } from '../../lib/commands/replica-relaxations.ts';

const argv = (...words: string[]) => words.map((w) => Buffer.from(w));
const text = (form: ReturnType<typeof clientForm>) =>
  form.kind === 'send' ? form.argv.map((b) => b.toString()).join(' ') : `recopy: ${form.why}`;

describe('clientForm', () => {
  it('drops LIMIT from an exact trim, as the master sends it', () => {
    const cases: [string[], string][] = [
      [['XADD', 's', 'MAXLEN', '=', '1000', 'LIMIT', '100', '1-1', 'f', 'v'], 'XADD s MAXLEN = 1000 1-1 f v'],
      [['XADD', 's', 'LIMIT', '100', 'MINID', '=', '5-0', '*', 'f', 'v'], 'XADD s MINID = 5-0 * f v'],
      [
        ['xadd', 's', 'nomkstream', 'maxlen', '7', 'limit', '3', '9-9', 'f', 'v'],
        'xadd s nomkstream maxlen 7 9-9 f v',
      ],
      [['XTRIM', 's', 'MAXLEN', '=', '10', 'LIMIT', '5'], 'XTRIM s MAXLEN = 10'],
      [['XTRIM', 's', 'MINID', '3-0', 'LIMIT', '5'], 'XTRIM s MINID 3-0'],
    ];
    for (const [input, expected] of cases)
      expect(text(clientForm(input[0]!.toLowerCase(), argv(...input), {}))).toBe(expected);
  });

  it('leaves a client’s forms alone: approximate trims with LIMIT, LIMIT among the fields', () => {
    const same = [
      ['XADD', 's', 'MAXLEN', '~', '1000', 'LIMIT', '100', '*', 'f', 'v'],
      ['XADD', 's', 'MAXLEN', '=', '5', '*', 'LIMIT', '100'],
      ['XADD', 's', '1-1', 'LIMIT', '2'],
      ['XTRIM', 's', 'MINID', '~', '3-0', 'LIMIT', '5'],
      ['XTRIM', 's', 'MAXLEN', '10'],
    ];
    for (const input of same)
      expect(text(clientForm(input[0]!.toLowerCase(), argv(...input), {}))).toBe(input.join(' '));
  });

  it('re-copies what would exceed the destination’s proto-max-bulk-len, and only that', () => {
    const limits = { maxBulkLen: 1000 };
    const recopied = [
      ['set', 'k', 'x'.repeat(1001)],
      ['setrange', 'k', '990', 'x'.repeat(11)],
      ['setbit', 'k', '8000', '1'],
      ['bitfield', 'k', 'GET', 'u8', '0', 'SET', 'u8', '#1000', '1'],
      ['bitfield', 'k', 'OVERFLOW', 'SAT', 'INCRBY', 'i16', '8000', '1'],
    ];
    for (const input of recopied) expect(clientForm(input[0]!, argv(...input), limits).kind).toBe('recopy');
    const kept = [
      ['set', 'k', 'x'.repeat(1000)],
      ['setrange', 'k', '990', 'x'.repeat(10)],
      ['setrange', 'k', '5000', ''],
      ['setbit', 'k', '7999', '1'],
      ['bitfield', 'k', 'SET', 'u8', '#999', '1', 'GET', 'u8', '7999'],
    ];
    for (const input of kept) expect(clientForm(input[0]!, argv(...input), limits).kind).toBe('send');
  });

  it('the filter applies the client form, re-copies keys without one, and stops on a keyless one', () => {
    const ctx = { catalogue: tableCatalogue(), keep: makeKeyFilter(), limits: { maxBulkLen: 1000 } };
    const xadd = filterCommand(
      { db: 0, argv: argv('XADD', 's', 'MAXLEN', '=', '1', 'LIMIT', '9', '1-1', 'f', 'v') },
      ctx,
    );
    expect(xadd.action === 'apply' && xadd.argv.map(String)).toEqual([
      'XADD',
      's',
      'MAXLEN',
      '=',
      '1',
      '1-1',
      'f',
      'v',
    ]);
    const big = filterCommand({ db: 0, argv: argv('APPEND', 'k', 'x'.repeat(2000)) }, ctx);
    expect(big).toMatchObject({ action: 'recopy', reason: 'replica-only', keys: [Buffer.from('k')] });
    const keyless = filterCommand({ db: 0, argv: argv('FUNCTION', 'LOAD', 'x'.repeat(2000)) }, ctx);
    expect(keyless.action === 'error' && keyless.message).toMatch(/proto-max-bulk-len, and it has no keys/);
  });

  it('the table names a reference, a handling and a test for every case', () => {
    for (const r of REPLICA_RELAXATIONS) {
      expect(r.commands.length).toBeGreaterThan(0);
      expect(r.reference).toMatch(/\.c:/);
      expect(r.test.length).toBeGreaterThan(0);
    }
  });
});

import { describe, expect, it } from 'vitest';
import { INTERNAL_KEY_PREFIXES, isInternalKey, makeKeyFilter } from '../../lib/commands/key-filter.ts';

const b = (s: string) => Buffer.from(s);

describe('key filter', () => {
  it('never keeps redis-dts’ own keys, and keeps everything else by default', () => {
    const keep = makeKeyFilter();
    for (const p of INTERNAL_KEY_PREFIXES) {
      expect(isInternalKey(b(`${p}x`))).toBe(true);
      expect(keep(b(`${p}x`))).toBe(false);
    }
    for (const k of ['redis-dts:user-key', 'redis-dts:', 'r', '', 'redis-dts:marke', 'xredis-dts:marker:1']) {
      expect(isInternalKey(b(k)), k).toBe(false);
      expect(keep(b(k)), k).toBe(true);
    }
    expect(keep(Buffer.from([0xff, 0x00, 0x72]))).toBe(true);
  });

  it('include and exclude prefixes: exclude wins, include empty means every key', () => {
    const keep = makeKeyFilter({ include: ['a:', 'b:'], exclude: ['a:secret:'] });
    expect(keep(b('a:1'))).toBe(true);
    expect(keep(b('b:'))).toBe(true);
    expect(keep(b('a:secret:1'))).toBe(false);
    expect(keep(b('c:1'))).toBe(false);
    expect(keep(b('redis-dts:marker:a:'))).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { keySlot, tagForSlots } from '../../lib/redis/cluster-slot.ts';

describe('keySlot', () => {
  it('matches the CRC16 vectors of the Redis Cluster specification', () => {
    expect(keySlot('123456789')).toBe(0x31c3 % 16384);
    expect(keySlot('123456789')).toBe(12739);
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('')).toBe(0);
  });

  it('hashes only the hash tag when there is one', () => {
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('foo{bar}{zap}')).toBe(keySlot('bar'));
  });

  it('hashes the whole key when the tag is empty or unclosed', () => {
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar'));
    expect(keySlot('foo{}{bar}')).toBe(keySlot(Buffer.from('foo{}{bar}')));
    expect(keySlot('{foo')).not.toBe(keySlot('foo'));
  });

  it('treats strings as UTF-8 and Buffers as raw bytes', () => {
    expect(keySlot('é')).toBe(keySlot(Buffer.from([0xc3, 0xa9])));
    expect(keySlot(Buffer.from([0xff, 0x00, 0x7b, 0x01, 0x7d]))).toBe(keySlot(Buffer.from([0x01])));
  });

  it('stays within 0..16383', () => {
    for (let i = 0; i < 2000; i++) {
      const slot = keySlot(`key:${i}`);
      expect(slot).toBeGreaterThanOrEqual(0);
      expect(slot).toBeLessThan(16384);
    }
  });
});

describe('tagForSlots', () => {
  it('returns the first base-36 tag whose slot is owned', () => {
    expect(tagForSlots(() => true)).toBe('0');
    const tag = tagForSlots((slot) => slot >= 10923);
    expect(keySlot(`redis-dts:marker:t:s:{${tag}}`)).toBeGreaterThanOrEqual(10923);
    const earlier = Array.from({ length: Number.parseInt(tag, 36) }, (_, i) => i.toString(36));
    for (const t of earlier) expect(keySlot(t)).toBeLessThan(10923);
  });

  it('finds a tag even for a single-slot owner', () => {
    const target = keySlot('some-key');
    expect(keySlot(tagForSlots((slot) => slot === target))).toBe(target);
  });

  it('throws when no tag lands in the owned slots', () => {
    expect(() => tagForSlots(() => false)).toThrow(/no hash tag/);
  });
});

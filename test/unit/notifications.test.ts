import { describe, expect, it } from 'vitest';
import { DirtyKeys } from '../../lib/notifications/dirty-keys.ts';
import { callCounts } from '../../lib/notifications/keyspace-command-watch.ts';
import { keyspacePatterns, parseKeyspaceChannel } from '../../lib/notifications/keyspace-subscriber.ts';
import {
  missingNotifyFlags,
  notifyConfigFix,
  withNeededFlags,
} from '../../lib/notifications/notify-config.ts';
import { parseTaskSpec } from '../../lib/task/spec.ts';

const BASE = { source: { url: 'redis://a:6379' }, target: { url: 'redis://b:6379' } };

describe('notify-keyspace-events', () => {
  it('needs K and every class A stands for', () => {
    expect(missingNotifyFlags('AKE')).toBe('');
    expect(missingNotifyFlags('Kg$lshzxet')).toBe('');
    expect(missingNotifyFlags('')).toBe('KA');
    expect(missingNotifyFlags('xE')).toBe('KA');
    expect(missingNotifyFlags('AE')).toBe('K');
    expect(missingNotifyFlags('Kg$lshzet')).toBe('A');
  });

  it('adds K and A and keeps E, m and n', () => {
    expect(withNeededFlags('xE')).toBe('KAE');
    expect(withNeededFlags('Emn')).toBe('KAEmn');
    expect(notifyConfigFix('xE')).toContain('parameter notify-keyspace-events = KAE');
    expect(notifyConfigFix(undefined)).toContain('CONFIG SET notify-keyspace-events KEA');
  });
});

describe('keyspace channels', () => {
  it('parses __keyspace@<db>__:<key> with binary keys, and nothing else', () => {
    const key = Buffer.from([0xff, 0x3a, 0x00, 0x5f]);
    const parsed = parseKeyspaceChannel(Buffer.concat([Buffer.from('__keyspace@12__:'), key]));
    expect(parsed?.db).toBe(12);
    expect(parsed?.key.equals(key)).toBe(true);
    expect(parseKeyspaceChannel(Buffer.from('__keyevent@0__:set'))).toBeUndefined();
    expect(parseKeyspaceChannel(Buffer.from('__keyspace@__:k'))).toBeUndefined();
    expect(parseKeyspaceChannel(Buffer.from('__keyspace@1_:k'))).toBeUndefined();
  });

  it('subscribes per selected db, or to every db', () => {
    expect(keyspacePatterns([0, 3])).toEqual(['__keyspace@0__:*', '__keyspace@3__:*']);
    expect(keyspacePatterns(undefined)).toEqual(['__keyspace@*__:*']);
  });
});

describe('DirtyKeys', () => {
  it('keeps each key once, takes one db at a time, oldest first, and counts marks past its bound', () => {
    const d = new DirtyKeys(3);
    d.mark(0, Buffer.from('a'), 1);
    d.mark(1, Buffer.from('a'), 2);
    d.mark(0, Buffer.from('a'), 3);
    d.mark(0, Buffer.from('b'), 4);
    d.mark(0, Buffer.from('c'), 5);
    expect(d.size).toBe(3);
    expect(d.full).toBe(true);
    expect(d.takeDropped()).toBe(1);
    expect(d.takeDropped()).toBe(0);
    expect(d.oldestMarkedAt).toBe(1);
    const first = d.take(10);
    expect(first?.db).toBe(0);
    expect(first?.keys.map((k) => [k.key.toString(), k.markedAt])).toEqual([
      ['a', 1],
      ['b', 4],
    ]);
    // Taken keys are marked again by a later event: nothing is lost between a take and its read.
    d.mark(0, Buffer.from('a'), 6);
    expect(d.take(10)).toMatchObject({ db: 1, keys: [{ markedAt: 2 }] });
    expect(d.take(10)).toMatchObject({ db: 0, keys: [{ markedAt: 6 }] });
    expect(d.take(10)).toBeUndefined();
  });

  it('copies a key given as a view of a reused buffer', () => {
    const d = new DirtyKeys();
    const buf = Buffer.from('key1');
    d.mark(0, buf.subarray(0, 4));
    buf.write('zzzz');
    expect(d.take(1)?.keys[0]?.key.toString()).toBe('key1');
  });
});

describe('INFO commandstats', () => {
  it('reads the calls of FLUSHDB, FLUSHALL and SWAPDB', () => {
    const info =
      '# Commandstats\r\ncmdstat_set:calls=9,usec=1\r\ncmdstat_flushdb:calls=2,usec=9,usec_per_call=4.5\r\n' +
      'cmdstat_swapdb:calls=1,usec=2\r\n';
    expect(callCounts(info)).toEqual({ flushdb: 2, flushall: 0, swapdb: 1 });
  });
});

describe('the task spec refuses what the notification reader cannot honour', () => {
  it('lambda windows and onBacklogLost resync', () => {
    expect(() =>
      parseTaskSpec({
        ...BASE,
        incremental: { reader: 'notifications', mode: 'lambda', onBacklogLost: 'resync' },
      }),
    ).toThrow(/incremental\.mode: lambda cannot run reader "notifications"[\s\S]*incremental\.onBacklogLost/);
  });

  it('defaults to psync and accepts notifications with fargate', () => {
    expect(parseTaskSpec(BASE).incremental.reader).toBe('psync');
    const spec = parseTaskSpec({
      ...BASE,
      incremental: { reader: 'notifications', setNotifyKeyspaceEvents: true },
    });
    expect(spec.incremental).toMatchObject({
      reader: 'notifications',
      mode: 'fargate',
      setNotifyKeyspaceEvents: true,
    });
  });
});

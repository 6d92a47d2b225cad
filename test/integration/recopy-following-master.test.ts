import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DtsError } from '../../lib/errors.ts';
import { KeyRecopier } from '../../lib/incremental/key-recopier.ts';
import { readFollowingMaster } from '../../lib/incremental/recopy-following-master.ts';
import { parseRedisUrl } from '../../lib/redis/url.ts';
import { type RedisClusterProcess, startRedisCluster } from '../support/redis-cluster.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recopierAt(url: string): KeyRecopier {
  return new KeyRecopier({
    source: parseRedisUrl(url, 'source'),
    sourceVersion: 7,
    maxPayloadBytes: 512 * 1024 * 1024,
    markerDb: 0,
    skipKey: Buffer.from('redis-dts:skip:test'),
    clusterSource: true,
  });
}

/** A key in the slots of masters[0] (0..5460 of three): `{a}` is slot 15495, `{b}` 3300. */
const KEY = Buffer.from('{b}recopied');

describe('a re-copy on a cluster source whose master fails over', () => {
  let source: RedisClusterProcess;

  beforeAll(async () => {
    source = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
  });
  afterAll(async () => {
    await source?.stop();
  });

  it('says the slots moved (not a vague read failure), then reads on the promoted master', async () => {
    const [oldMaster] = source.masters;
    const [replica] = source.replicas;
    expect(await oldMaster!.cli('CLUSTER', 'KEYSLOT', KEY.toString())).toBe('3300');
    await oldMaster!.cli('SET', KEY.toString(), 'v1');
    const oldReplid = /master_replid:(\w+)/.exec(await oldMaster!.cli('INFO', 'replication'))![1]!;

    expect(await replica!.cli('CLUSTER', 'FAILOVER')).toBe('OK');
    for (let i = 0; i < 100 && !(await replica!.cli('ROLE')).startsWith('master'); i++) await sleep(100);
    expect(await replica!.cli('ROLE')).toMatch(/^master/);
    for (let i = 0; i < 100 && (await oldMaster!.cli('ROLE')).startsWith('master'); i++) await sleep(100);

    let recopier = recopierAt(oldMaster!.url);
    const moved = await recopier.read(0, [KEY]).catch((e: unknown) => e);
    expect(moved).toBeInstanceOf(DtsError);
    expect((moved as DtsError).code).toBe('SOURCE_SLOTS_MOVED');
    expect((moved as DtsError).message).toMatch(/no longer serves these keys' slots \(MOVED 3300 /);

    let followed = 0;
    const r = await readFollowingMaster(
      () => recopier.read(0, [KEY]),
      async () => {
        followed++;
        await recopier.close();
        recopier = recopierAt(replica!.url);
      },
    );
    await recopier.close();
    expect(followed).toBe(1);
    expect(r.keys).toBe(1);
    // A RESTORE of the key's value, with its skip entry, stamped by the promoted master.
    expect(r.commands.map((c) => c.argv[0]!.toString())).toEqual(['RESTORE', 'HSET']);
    const info = await replica!.cli('INFO', 'replication');
    expect(r.stamp.replid).toBe(/master_replid:(\w+)/.exec(info)![1]);
    // ...which continues the old master's history, so its offsets compare with the stream's.
    expect(/master_replid2:(\w+)/.exec(info)![1]).toBe(oldReplid);
  });

  it('leaves a MOVED error as it is where there is nothing to follow (a standalone source)', async () => {
    const err = new DtsError('SOURCE_SLOTS_MOVED', 'moved', 'fix');
    await expect(readFollowingMaster(() => Promise.reject(err), undefined)).rejects.toBe(err);
    const other = new DtsError('SOURCE_READ_FAILED', 'other', 'fix');
    let followed = 0;
    await expect(
      readFollowingMaster(
        () => Promise.reject(other),
        async () => {
          followed++;
        },
      ),
    ).rejects.toBe(other);
    expect(followed).toBe(0);
  });
});

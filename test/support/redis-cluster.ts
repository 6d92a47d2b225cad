import { type RedisProcess, startRedis } from './redis-server.ts';

const SLOT_COUNT = 16384;
const READY_TIMEOUT_MS = 30_000;

/** A Redis Cluster of real redis-server processes on loopback, built without redis-cli --cluster. */
export interface RedisClusterProcess {
  nodes: RedisProcess[];
  masters: RedisProcess[];
  /** replicas[i] replicates masters[i] when replicasPerMaster=1 */
  replicas: RedisProcess[];
  /** of masters[0] */
  url: string;
  stop(): Promise<void>;
}

export interface StartRedisClusterOptions {
  /** Default 3. */
  masters?: number;
  replicasPerMaster?: 0 | 1;
  /** requirepass and masterauth on every node. */
  password?: string;
  /** Extra config for every node. */
  args?: string[];
}

/**
 * Starts the nodes, gives each master an even share of the slots, joins them with CLUSTER MEET, attaches
 * replicas with CLUSTER REPLICATE, and resolves once every node reports cluster_state:ok with the same
 * slot map, every replica's link is up, and every node's CLUSTER SLOTS lists every replica.
 */
export async function startRedisCluster(o: StartRedisClusterOptions = {}): Promise<RedisClusterProcess> {
  const masterCount = o.masters ?? 3;
  const replicaCount = (o.replicasPerMaster ?? 0) * masterCount;
  const args = [
    '--cluster-enabled',
    'yes',
    // A short timeout only matters for failure detection; tests that kill a node want it fast.
    '--cluster-node-timeout',
    '2000',
    // CLUSTER SLOTS hides a replica until its replication offset is non-zero, which on an idle master takes
    // the first replication PING (every 10 s by default).
    '--repl-ping-replica-period',
    '1',
    ...(o.password ? ['--requirepass', o.password, '--masterauth', o.password] : []),
    ...(o.args ?? []),
  ];
  const started = await Promise.allSettled(
    Array.from({ length: masterCount + replicaCount }, () => startRedis({ args, password: o.password })),
  );
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const masters = nodes.slice(0, masterCount);
    const replicas = nodes.slice(masterCount);
    await formCluster(masters, replicas);
    return { nodes, masters, replicas, url: masters[0]!.url, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function formCluster(masters: RedisProcess[], replicas: RedisProcess[]): Promise<void> {
  const nodes = [...masters, ...replicas];
  const ids = await Promise.all(nodes.map((n) => n.cli('CLUSTER', 'MYID')));
  const idOf = new Map(nodes.map((n, i) => [n, ids[i]!]));

  await Promise.all(
    masters.map((m, i) => {
      const [start, end] = evenRange(i, masters.length);
      return expectOk(m, 'CLUSTER', 'ADDSLOTSRANGE', String(start), String(end));
    }),
  );
  const [first, ...others] = nodes;
  for (const n of others) await expectOk(first!, 'CLUSTER', 'MEET', n.host, String(n.port));

  // CLUSTER REPLICATE refuses a master id the replica has not learned through gossip yet.
  await waitFor('every node to learn every other node', async () => {
    const views = await Promise.all(nodes.map((n) => n.cli('CLUSTER', 'NODES')));
    const missing = views.flatMap((view, i) =>
      ids.filter((id) => !view.includes(id)).map((id) => `${nodes[i]!.port} does not know ${id}`),
    );
    return missing.length === 0 ? undefined : missing.join('; ');
  });
  await Promise.all(
    replicas.map((r, i) => expectOk(r, 'CLUSTER', 'REPLICATE', idOf.get(masters[i % masters.length]!)!)),
  );

  const expected = clusterSignature(
    masters.map((m, i) => ({ id: idOf.get(m)!, slots: rangeText(evenRange(i, masters.length)) })),
    replicas.map((r, i) => ({ id: idOf.get(r)!, masterId: idOf.get(masters[i % masters.length]!)! })),
  );
  const replicaIds = replicas.map((r) => idOf.get(r)!);
  await waitFor('cluster_state:ok and the same slot map on every node', async () => {
    const problems: string[] = [];
    await Promise.all(
      nodes.map(async (n) => {
        const info = parseInfo(await n.cli('CLUSTER', 'INFO'));
        if (info.cluster_state !== 'ok') problems.push(`${n.port}: cluster_state:${info.cluster_state}`);
        const seen = signatureOfNodes(await n.cli('CLUSTER', 'NODES'));
        if (seen !== expected) problems.push(`${n.port} sees ${seen}`);
        const slots = await n.cli('CLUSTER', 'SLOTS');
        const hidden = replicaIds.filter((id) => !slots.includes(id));
        if (hidden.length > 0) problems.push(`${n.port}: CLUSTER SLOTS does not list replicas ${hidden}`);
      }),
    );
    await Promise.all(
      replicas.map(async (r) => {
        const link = parseInfo(await r.cli('INFO', 'replication')).master_link_status;
        if (link !== 'up') problems.push(`replica ${r.port}: master_link_status:${link}`);
      }),
    );
    return problems.length === 0 ? undefined : problems.join('; ');
  });
}

/** Slots [start, end] of master i of n: contiguous, covering all 16384 between them. */
function evenRange(i: number, n: number): [number, number] {
  return [Math.floor((i * SLOT_COUNT) / n), Math.floor(((i + 1) * SLOT_COUNT) / n) - 1];
}

function rangeText([start, end]: [number, number]): string {
  return start === end ? `${start}` : `${start}-${end}`;
}

async function expectOk(node: RedisProcess, ...args: string[]): Promise<void> {
  const reply = await node.cli(...args);
  if (reply !== 'OK') throw new Error(`${args.join(' ')} on port ${node.port} answered: ${reply}`);
}

/** A node-independent text of who serves which slots and who replicates whom, healthy links only. */
function clusterSignature(
  masters: { id: string; slots: string }[],
  replicas: { id: string; masterId: string }[],
): string {
  return [
    ...masters.map((m) => `${m.id} master ${m.slots}`),
    ...replicas.map((r) => `${r.id} replica-of ${r.masterId}`),
  ]
    .sort()
    .join(' | ');
}

/** Parses CLUSTER NODES (`id addr flags master ping pong epoch link slots…`) into clusterSignature form. */
function signatureOfNodes(text: string): string {
  const masters: { id: string; slots: string }[] = [];
  const replicas: { id: string; masterId: string }[] = [];
  for (const line of text.split(/\r?\n/)) {
    const [id, , flagText, masterId, , , , link, ...slots] = line.trim().split(' ');
    if (!id || !flagText) continue;
    const flags = flagText.split(',');
    // A node still in handshake, failing, or disconnected is not a settled cluster yet.
    const health = ['handshake', 'fail', 'fail?', 'noaddr'].filter((f) => flags.includes(f));
    const state = link === 'connected' && health.length === 0 ? '' : ` (${[...health, link].join(',')})`;
    if (flags.includes('slave')) replicas.push({ id: id + state, masterId: masterId ?? '' });
    else masters.push({ id: id + state, slots: slots.join(',') });
  }
  return clusterSignature(masters, replicas);
}

function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) out[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return out;
}

/** Polls `check` (undefined = done, else what is still missing) until it passes or the deadline. */
async function waitFor(what: string, check: () => Promise<string | undefined>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'not checked yet';
  while (Date.now() < deadline) {
    try {
      const missing = await check();
      if (missing === undefined) return;
      last = missing;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `redis cluster: timed out after ${READY_TIMEOUT_MS / 1000} s waiting for ${what}; last: ${last}`,
  );
}

import { describeTopology } from '../redis/cluster-topology.ts';
import { addressOf } from './server-facts.ts';
import type { CheckResult, PrecheckCheck, PrecheckSide, Role } from './types.ts';

export const sourceTopology: PrecheckCheck = topologyItem('source', 'source-cluster', 'Source topology');
export const targetTopology: PrecheckCheck = topologyItem('target', 'target-cluster', 'Destination topology');

/** Reports a side's layout: standalone, or the cluster's masters with their slots and replicas. */
function topologyItem(role: Role, id: string, title: string): PrecheckCheck {
  return {
    id,
    title,
    needs: [role],
    // It reports the layout, or why it could not be read.
    seedOnly: true,
    async run(ctx) {
      const side = ctx[role]!;
      return role === 'source' ? describeSource(side) : describeTarget(side);
    },
  };
}

function describeSource(side: PrecheckSide): CheckResult {
  if (!side.info.clusterEnabled) {
    return { status: 'passed', detail: 'standalone source: one full sync and one replication stream' };
  }
  return (
    layoutProblem(side, 'source') ?? {
      status: 'passed',
      detail:
        `cluster source, ${describeTopology(side.topology!)}${seedNote(side)}: the full sync scans each ` +
        'master, and incremental sync runs one PSYNC stream per master',
    }
  );
}

function describeTarget(side: PrecheckSide): CheckResult {
  if (!side.info.clusterEnabled) {
    return {
      status: 'passed',
      detail: 'standalone destination: every command is applied as the source ran it',
    };
  }
  return (
    layoutProblem(side, 'destination') ?? {
      status: 'passed',
      detail:
        `cluster destination, ${describeTopology(side.topology!)}${seedNote(side)}: each key is written ` +
        'to the master of its slot, with a replication marker per master',
    }
  );
}

function layoutProblem(side: PrecheckSide, word: string): CheckResult | undefined {
  const err = side.layoutError;
  if (!err) return undefined;
  return {
    status: 'failed',
    detail: `cluster ${word} (layout read from ${addressOf(side.ep)}): ${err.message}`,
    fix: err.fix,
  };
}

/** A replica as the seed is fine (any node answers CLUSTER SLOTS), but worth saying. */
function seedNote(side: PrecheckSide): string {
  return side.info.role === 'replica'
    ? ` (the URL names replica ${addressOf(side.ep)}; the layout was read from it, and DTS works with the masters)`
    : '';
}

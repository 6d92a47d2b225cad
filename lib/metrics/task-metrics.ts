/**
 * The CloudWatch metrics of a task, as one list that the emitters (the step Lambdas and the Fargate
 * replicator, as EMF) and the stack's dashboard and alarms both read, so a renamed metric cannot leave
 * a widget or an alarm watching nothing.
 *
 * Every task metric carries the dimensions `service` and `task` (the task id), whichever compute shape
 * emitted it, so one dashboard variable selects a task and one Metrics Insights query covers them all.
 */
export const METRICS_NAMESPACE = 'RedisDts';

export const TASK_DIMENSIONS = ['service', 'task'] as const;

export const TASK_METRIC = {
  /** Heartbeat lag: apply time minus the source time the heartbeat carried (Maximum). */
  lagMs: 'SyncLagMs',
  /** Source offset minus applied offset (Maximum). */
  bytesBehind: 'BytesBehind',
  /** Commands applied per second over the last progress interval (Average). */
  opsPerSecond: 'OpsPerSecond',
  /** Commands applied since the previous publication (Sum). */
  commandsApplied: 'CommandsApplied',
  /** Keys re-copied from the source at a stamp (Sum). */
  keysRecopied: 'KeysRecopied',
  /** Keys written by the full sync (Sum; per period, the copy rate). */
  keysCopied: 'KeysCopied',
  /** Keys the last verification round found differing (Maximum): the sampled one during incremental, and the final one. */
  inconsistentKeys: 'InconsistentKeys',
  /** One per start of the replicator container (Sum; above one per execution, it was restarted). */
  replicatorStarts: 'ReplicatorStarts',
  /** Notifications reader: gaps in the keyspace events seen so far (lost subscription, silent probes…) (Maximum). */
  eventGaps: 'EventGaps',
  /** Notifications reader: repair rounds run so far, each a compare-and-copy pass (Maximum). */
  repairRounds: 'RepairRounds',
  /** Notifications reader: keys marked by events and not yet copied (Maximum). */
  dirtyKeys: 'DirtyKeys',
} as const;

export type TaskMetricName = (typeof TASK_METRIC)[keyof typeof TASK_METRIC];

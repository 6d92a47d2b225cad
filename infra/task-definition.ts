import type { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import {
  Choice,
  Condition,
  Fail,
  type IChainable,
  IntegrationPattern,
  type IStateMachine,
  JsonPath,
  Map as MapState,
  Pass,
  Succeed,
  TaskInput,
  Timeout,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke, StepFunctionsStartExecution } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Duration } from 'aws-cdk-lib/core';
import type { Construct } from 'constructs';
import { DTS_ERROR_PREFIX } from '../lib/orchestration/step-error.ts';
import { type ReplicatorTarget, replicatorRunTask } from './replicator-run-task.ts';

/** The Lambda of each Task state (functions/<name>/handler.ts). */
export interface StepFunctions {
  validate: IFunction;
  precheck: IFunction;
  captureStart: IFunction;
  planUnits: IFunction;
  copyChunk: IFunction;
  incrementalWindow: IFunction;
  verify: IFunction;
  cleanup: IFunction;
  recordFailure: IFunction;
}

export interface TaskDefinitionOptions {
  functions: StepFunctions;
  replicator: ReplicatorTarget;
  /** This machine itself, by name: continuing as a new execution starts it again. */
  self: IStateMachine;
  /** Units copied at the same time (Map concurrency). */
  maxConcurrentUnits: number;
}

/**
 * IncrementalWindow iterations per execution: 7 events each (Task and Choice) keeps a long-running
 * Lambda-mode task well under the 25,000-event history limit before it continues as new.
 */
export const MAX_WINDOWS_PER_EXECUTION = 3000;

/**
 * The task's state machine (JSONPath):
 * Validate → Precheck → (Fail with the report) → CaptureStart → FullSync Map of CopyChunk loops →
 * Incremental (Fargate replicator | IncrementalWindow loop) → Verify → Cleanup → Succeed.
 * Full-only tasks with the scan reader skip CaptureStart and Incremental; with the RDB reader, CaptureStart
 * goes straight to the replicator, which takes the snapshot and (unless full-only) continues the stream. Every failure is recorded on the task item.
 */
export function buildTaskDefinition(
  scope: Construct,
  o: TaskDefinitionOptions,
): { definition: IChainable; policy: PolicyStatement[]; taskArns: string } {
  const fns = o.functions;
  const taskPayload = {
    taskId: JsonPath.stringAt('$.task.taskId'),
    spec: JsonPath.objectAt('$.task.spec'),
  };
  const invoke = (id: string, fn: IFunction, resultPath: string | null, payload?: TaskInput) =>
    new LambdaInvoke(scope, id, {
      lambdaFunction: fn,
      taskTimeout: taskTimeoutOf(fn),
      // Without a payload the function gets the state's whole input.
      ...(payload ? { payload } : {}),
      payloadResponseOnly: true,
      resultPath: resultPath === null ? JsonPath.DISCARD : resultPath,
      retryOnServiceExceptions: true,
    });

  const failTask = new Fail(scope, 'TaskFailed', { errorPath: '$.error.Error', causePath: '$.error.Cause' });
  const recordFailure = invoke(
    'RecordFailure',
    fns.recordFailure,
    null,
    TaskInput.fromObject({ taskId: JsonPath.stringAt('$.task.taskId'), error: JsonPath.objectAt('$.error') }),
  );
  recordFailure.addCatch(failTask, { resultPath: '$.recordError' });
  recordFailure.next(failTask);
  const onError = { resultPath: '$.error' };

  const validate = new LambdaInvoke(scope, 'Validate', {
    lambdaFunction: fns.validate,
    taskTimeout: taskTimeoutOf(fns.validate),
    payload: TaskInput.fromObject({ input: JsonPath.entirePayload }),
    payloadResponseOnly: true,
    // The state keeps only the parsed task: the raw input is not carried through the execution. (The
    // default ResultPath, `$`, replaces the input; written out, aws-local-stepfunctions mishandles it.)
    resultSelector: { 'task.$': '$' },
    retryOnServiceExceptions: true,
  });
  // No task item exists when the spec is invalid: fail directly with the validation message.
  validate.addCatch(failTask, onError);

  const precheck = new LambdaInvoke(scope, 'Precheck', {
    lambdaFunction: fns.precheck,
    taskTimeout: taskTimeoutOf(fns.precheck),
    payload: TaskInput.fromObject(taskPayload),
    payloadResponseOnly: true,
    // The items stay in the task's logs; the execution carries the verdict and its one-text report.
    resultSelector: {
      'status.$': '$.status',
      'summary.$': '$.summary',
      'fullSyncReader.$': '$.fullSyncReader',
    },
    resultPath: '$.precheck',
    retryOnServiceExceptions: true,
  });
  precheck.addCatch(recordFailure, onError);
  const precheckFailed = new Pass(scope, 'PrecheckFailed', {
    parameters: { Error: 'PrecheckFailed', 'Cause.$': '$.precheck.summary' },
    resultPath: '$.error',
  }).next(recordFailure);

  const captureStart = invoke(
    'CaptureStart',
    fns.captureStart,
    '$.captureStart',
    TaskInput.fromObject({ ...taskPayload, fullSyncReader: JsonPath.stringAt('$.precheck.fullSyncReader') }),
  );
  captureStart.addCatch(recordFailure, onError);

  // Full sync: plan, copy every pending unit in bounded loops, re-plan; continue as new while units remain.
  const planUnits = invoke('PlanUnits', fns.planUnits, '$.plan', TaskInput.fromObject(taskPayload));
  planUnits.addCatch(recordFailure, onError);
  const checkFullSync = invoke('CheckFullSync', fns.planUnits, '$.plan', TaskInput.fromObject(taskPayload));
  checkFullSync.addCatch(recordFailure, onError);

  // The Map item as it stands: task id, spec, unit, bound, and the previous turn's progress.
  const copyChunk = invoke('CopyChunk', fns.copyChunk, '$.progress');
  copyChunk.addRetry({
    errors: ['Lambda.Unknown', 'States.Timeout'],
    interval: Duration.seconds(5),
    maxAttempts: 2,
    backoffRate: 2,
  });
  // A destination cluster resharded or failed over: the next attempt reads the new slot map and resumes
  // from the unit's checkpoint.
  copyChunk.addRetry({
    errors: [`${DTS_ERROR_PREFIX}TARGET_SLOTS_MOVED`],
    interval: Duration.seconds(2),
    maxAttempts: 10,
    backoffRate: 1.5,
  });
  const unitLoop = copyChunk.next(
    new Choice(scope, 'UnitDone?')
      .when(Condition.booleanEquals('$.progress.done', true), new Succeed(scope, 'UnitCopied'))
      .when(
        Condition.numberGreaterThanEqualsJsonPath('$.progress.iteration', '$.maxIterations'),
        new Succeed(scope, 'UnitPaused'),
      )
      .otherwise(copyChunk),
  );
  const fullSync = new MapState(scope, 'FullSync', {
    itemsPath: '$.plan.units',
    itemSelector: {
      taskId: JsonPath.stringAt('$.task.taskId'),
      spec: JsonPath.objectAt('$.task.spec'),
      unit: JsonPath.objectAt('$$.Map.Item.Value'),
      maxIterations: JsonPath.numberAt('$.plan.maxIterations'),
    },
    maxConcurrency: o.maxConcurrentUnits,
    resultPath: JsonPath.DISCARD,
  });
  fullSync.itemProcessor(unitLoop);
  fullSync.addCatch(recordFailure, onError);

  const continueAs = (id: string, phase: 'fullsync' | 'incremental') => {
    const start = new StepFunctionsStartExecution(scope, id, {
      stateMachine: o.self,
      integrationPattern: IntegrationPattern.REQUEST_RESPONSE,
      associateWithParent: true,
      input: TaskInput.fromObject({ resume: { taskId: JsonPath.stringAt('$.task.taskId'), phase } }),
      resultPath: JsonPath.DISCARD,
    });
    start.addCatch(recordFailure, onError);
    return start.next(new Succeed(scope, `${id}Started`, { comment: 'the task goes on in a new execution' }));
  };

  // Incremental: the Fargate replicator, or a loop of IncrementalWindow Lambdas.
  const verify = invoke('Verify', fns.verify, '$.verify', TaskInput.fromObject(taskPayload));
  verify.addCatch(recordFailure, onError);
  const cleanup = invoke('Cleanup', fns.cleanup, '$.cleanup', TaskInput.fromObject(taskPayload));
  cleanup.addCatch(recordFailure, onError);
  verify.next(cleanup).next(new Succeed(scope, 'TaskSucceeded'));

  const replicator = replicatorRunTask(scope, 'RunReplicator', o.replicator, '$.task.taskId');
  const runReplicator = replicator.state;
  runReplicator.addRetry({
    errors: ['States.TaskFailed'],
    interval: Duration.seconds(30),
    maxAttempts: 3,
    backoffRate: 2,
  });
  runReplicator.addCatch(recordFailure, onError);
  runReplicator.next(verify);

  const startWindows = new Pass(scope, 'StartWindows', {
    result: { value: { iteration: 0, stopped: false } },
    resultPath: '$.window',
  });
  const window = invoke(
    'IncrementalWindow',
    fns.incrementalWindow,
    '$.window',
    TaskInput.fromObject({ ...taskPayload, window: JsonPath.objectAt('$.window') }),
  );
  window.addCatch(recordFailure, onError);
  startWindows
    .next(window)
    .next(
      new Choice(scope, 'WindowsDone?')
        .when(Condition.booleanEquals('$.window.stopped', true), verify)
        .when(
          Condition.numberGreaterThanEquals('$.window.iteration', MAX_WINDOWS_PER_EXECUTION),
          continueAs('ContinueIncremental', 'incremental'),
        )
        .otherwise(window),
    );

  const incremental = new Choice(scope, 'IncrementalMode?')
    .when(Condition.stringEquals('$.task.incrementalMode', 'lambda'), startWindows)
    .otherwise(runReplicator);

  const afterFullSync = new Choice(scope, 'AfterFullSync?')
    .when(Condition.stringEquals('$.task.syncType', 'full'), verify)
    .otherwise(incremental);

  planUnits.next(
    new Choice(scope, 'UnitsPending?')
      .when(Condition.booleanEquals('$.plan.allDone', true), afterFullSync)
      .otherwise(fullSync),
  );
  fullSync
    .next(checkFullSync)
    .next(
      new Choice(scope, 'FullSyncFinished?')
        .when(Condition.booleanEquals('$.plan.allDone', true), afterFullSync)
        .otherwise(continueAs('ContinueFullSync', 'fullsync')),
    );

  // The RDB reader's full sync runs in the replicator, which then goes on with the stream on the same link.
  captureStart.next(
    new Choice(scope, 'NeedsFullSync?')
      .when(Condition.stringEquals('$.task.syncType', 'incremental'), incremental)
      .when(Condition.stringEquals('$.captureStart.reader', 'rdb'), runReplicator)
      .otherwise(planUnits),
  );

  precheck.next(
    new Choice(scope, 'PrecheckPassed?')
      .when(Condition.stringEquals('$.precheck.status', 'failed'), precheckFailed)
      .when(
        Condition.and(
          Condition.stringEquals('$.precheck.status', 'warning'),
          Condition.booleanEquals('$.task.spec.acknowledgeWarnings', false),
        ),
        precheckFailed,
      )
      .when(
        Condition.and(
          Condition.stringEquals('$.task.syncType', 'full'),
          Condition.stringEquals('$.precheck.fullSyncReader', 'scan'),
        ),
        planUnits,
      )
      .otherwise(captureStart),
  );

  // A bad spec ends the execution with its problems as the cause, readable in the console (no task
  // item exists for it, so RecordFailure has nothing to record).
  const specRefused = new Fail(scope, 'SpecRefused', {
    errorPath: '$.task.refused.error',
    causePath: '$.task.refused.cause',
  });
  const definition = validate.next(
    new Choice(scope, 'SpecValid?')
      .when(Condition.isPresent('$.task.refused'), specRefused)
      .otherwise(
        new Choice(scope, 'ResumeAt?')
          .when(Condition.stringEquals('$.task.resumeAt', 'fullsync'), planUnits)
          .when(Condition.stringEquals('$.task.resumeAt', 'incremental'), incremental)
          .otherwise(precheck),
      ),
  );
  // Policy for the states CDK cannot grant itself (the written-out RunReplicator).
  return { definition, policy: replicator.policy, taskArns: replicator.taskArns };
}

/**
 * A Task state's timeout: its function's own timeout and a minute for the invocation around it. Without
 * one, Step Functions waits up to a year on AWS, and the local runner (aws-local-stepfunctions) gives up
 * after 60 s while the step goes on running.
 */
function taskTimeoutOf(fn: IFunction): Timeout {
  const own = (fn as { timeout?: Duration }).timeout ?? Duration.minutes(15);
  return Timeout.duration(own.plus(Duration.minutes(1)));
}

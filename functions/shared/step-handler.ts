import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import { isDtsError } from '../../lib/errors.ts';
import type { SecretValues } from '../../lib/orchestration/step-endpoints.ts';
import { asStepError } from '../../lib/orchestration/step-error.ts';
import type { TaskSpec } from '../../lib/task/spec.ts';
import { parseTaskSpec } from '../../lib/task/spec.ts';
import { logger, metrics } from './powertools.ts';
import { secretValue } from './secret-cache.ts';

export interface StepContext extends Context {
  /** Passwords of the spec's passwordSecretArn fields, fetched by the secrets middleware. */
  secretValues: SecretValues;
}

/** Events of task steps carry the spec; it is validated again here, in AWS mode. */
export interface SpecEvent {
  spec?: unknown;
}

/**
 * Validates `event.spec` with the task spec schema in AWS mode (no plain passwords can have come in)
 * and replaces it with the parsed spec, defaults applied.
 */
export function validateSpec<E extends object>(): MiddlewareObj<E, unknown, Error, StepContext> {
  return {
    before: (request) => {
      const event = request.event as SpecEvent;
      if (event.spec !== undefined) event.spec = parseTaskSpec(event.spec, { mode: 'aws' });
    },
  };
}

/** Fetches the endpoints' passwords from Secrets Manager (cached) into `context.secretValues`. */
export function fetchSecrets<E extends object>(): MiddlewareObj<E, unknown, Error, StepContext> {
  return {
    before: async (request) => {
      const spec = (request.event as SpecEvent).spec as TaskSpec | undefined;
      const values: SecretValues = {};
      for (const role of ['source', 'target'] as const) {
        const arn = spec?.[role].passwordSecretArn;
        if (arn) values[role] = await secretValue(arn);
      }
      request.context.secretValues = values;
    },
  };
}

/** DtsErrors leave the function as `DtsError.<code>` errors (see asStepError). */
function dtsErrors<E>(): MiddlewareObj<E, unknown, Error, StepContext> {
  return {
    onError: (request) => {
      const e = request.error;
      metrics.addMetric('StepFailed', MetricUnit.Count, 1);
      if (!isDtsError(e)) return;
      logger.error('step failed', { code: e.code, detail: e.message });
      request.error = asStepError(e) as Error;
    },
  };
}

/** A thin step handler: Powertools logging and metrics, spec validation, secrets, DtsError mapping. */
export function stepHandler<E extends object, R>(
  step: string,
  body: (event: E, context: StepContext) => Promise<R>,
) {
  // One function per step: the dimension holds for every invocation of this instance.
  metrics.setDefaultDimensions({ step });
  return middy<E, R, Error, StepContext>(async (event: E, context: StepContext) => {
    const result = await body(event, context);
    metrics.addMetric('StepSucceeded', MetricUnit.Count, 1);
    return result;
  })
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics, { captureColdStartMetric: true }))
    .use(validateSpec<E>())
    .use(fetchSecrets<E>())
    .use(dtsErrors<E>());
}

import type { RedisEndpoint } from '../redis/endpoint.ts';
import { resolveEndpoint } from '../task/resolve-endpoint.ts';
import type { TaskSpec } from '../task/spec.ts';

/** Passwords fetched for a task's endpoints (the Lambda's secrets middleware; empty locally). */
export interface SecretValues {
  source?: string;
  target?: string;
}

export function stepEndpoints(
  spec: TaskSpec,
  secrets: SecretValues = {},
): { source: RedisEndpoint; target: RedisEndpoint } {
  return {
    source: resolveEndpoint(spec.source, 'source', secrets.source),
    target: resolveEndpoint(spec.target, 'target', secrets.target),
  };
}

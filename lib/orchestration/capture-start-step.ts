import { type CaptureStartResult, captureStart } from '../replication/capture-start.ts';
import type { TaskStore } from '../state/task-store.ts';
import { type SecretValues, stepEndpoints } from './step-endpoints.ts';
import type { TaskStepInput } from './step-types.ts';

/** The CaptureStart state: the source offset incremental sync resumes from, taken before the full sync. */
export async function captureStartStep(
  input: TaskStepInput,
  o: { store: TaskStore; secrets?: SecretValues },
): Promise<CaptureStartResult> {
  const { source } = stepEndpoints(input.spec, o.secrets);
  const start = await captureStart(source);
  await o.store.updateTask(input.taskId, { phase: 'capture-start' });
  return start;
}

import { notBuilt } from '../../lib/orchestration/not-built.ts';
import type { TaskStepInput } from '../../lib/orchestration/step-types.ts';
import { stepHandler } from '../shared/step-handler.ts';

/** One window of incremental sync in Lambda mode; returns {stopped, iteration} once the core exists. */
export const handler = stepHandler(
  'IncrementalWindow',
  async (_event: TaskStepInput): Promise<{ stopped: boolean; iteration: number }> => {
    throw notBuilt('incremental sync');
  },
);

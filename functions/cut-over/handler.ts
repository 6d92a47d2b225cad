import { cutOverFromEvent } from '../../lib/orchestration/cut-over-event.ts';
import { stepHandler } from '../shared/step-handler.ts';
import { taskStore } from '../shared/task-store.ts';

/** The Cut Over Task rule's target: the event's detail names the task (lib/orchestration/cut-over-event.ts). */
export const handler = stepHandler('CutOverTask', (event: { detail?: unknown }) =>
  cutOverFromEvent(event.detail, { store: taskStore() }),
);

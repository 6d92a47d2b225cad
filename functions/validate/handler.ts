import { validateStep } from '../../lib/orchestration/validate-step.ts';
import { stepHandler } from '../shared/step-handler.ts';
import { taskStore } from '../shared/task-store.ts';

/** The whole machine input arrives here: a spec, `{spec}`, or a continuation `{resume}`. */
export const handler = stepHandler<{ input?: unknown }, Awaited<ReturnType<typeof validateStep>>>(
  'Validate',
  (event) => validateStep(event.input, { store: taskStore(), mode: 'aws' }),
);

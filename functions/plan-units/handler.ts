import { planUnitsStep } from '../../lib/orchestration/plan-units-step.ts';
import type { TaskStepInput } from '../../lib/orchestration/step-types.ts';
import { stepHandler } from '../shared/step-handler.ts';
import { taskStore } from '../shared/task-store.ts';

export const handler = stepHandler('PlanUnits', (event: TaskStepInput, context) =>
  planUnitsStep(event, { store: taskStore(), secrets: context.secretValues }),
);

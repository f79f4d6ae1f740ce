import { type Plan, planSchema } from '../../domain/plan.ts';
import { harness } from '../../harness/index.ts';
import { type Llm, promptedRequest } from './client.ts';

/** The task's plan, from one structured model call; the harness phrases it (harness.prompts.plan). */
export async function planTask(llm: Llm, task: string): Promise<Plan> {
  const { value } = await llm.structured(promptedRequest(harness.prompts.plan, { task }, { purpose: 'plan_task', schema: planSchema }));
  return value;
}

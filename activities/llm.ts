import { z } from 'zod';
import type { Plan } from '../domain/plan.ts';
import type { Llm } from '../services/llm/client.ts';
import {
  createForgeAuthor,
  extractApiSpecInputSchema,
  repairInputSchema,
  writeImplementationInputSchema,
  writeSpecInputSchema,
  writeTestsInputSchema,
} from '../services/llm/forge-author.ts';
import { planTask } from '../services/llm/planner.ts';
import { adapted, parseActivityInput } from './failures.ts';

export const planTaskInputSchema = z.strictObject({ task: z.string().trim().min(1).max(20_000) });
export type PlanTaskInput = z.infer<typeof planTaskInputSchema>;

/** The task's planning call. */
export function llmActivities(llm: Llm) {
  return adapted({
    async planTask(input: PlanTaskInput): Promise<Plan> {
      const { task } = parseActivityInput(planTaskInputSchema, input, 'planTask input');
      return planTask(llm, task);
    },
  });
}

/** The model's side of the forge cycle, one activity per step. */
export function forgeLlmActivities(llm: Llm) {
  const author = createForgeAuthor(llm);
  return adapted({
    writeSpec: (input: z.input<typeof writeSpecInputSchema>) =>
      author.writeSpec(parseActivityInput(writeSpecInputSchema, input, 'writeSpec input')),
    extractApiSpec: (input: z.input<typeof extractApiSpecInputSchema>) =>
      author.extractApiSpec(parseActivityInput(extractApiSpecInputSchema, input, 'extractApiSpec input')),
    writeTests: (input: z.input<typeof writeTestsInputSchema>) =>
      author.writeTests(parseActivityInput(writeTestsInputSchema, input, 'writeTests input')),
    writeImplementation: (input: z.input<typeof writeImplementationInputSchema>) =>
      author.writeImplementation(parseActivityInput(writeImplementationInputSchema, input, 'writeImplementation input')),
    repairImplementation: (input: z.input<typeof repairInputSchema>) =>
      author.repairImplementation(parseActivityInput(repairInputSchema, input, 'repairImplementation input')),
  });
}

export type ForgeLlmActivities = ReturnType<typeof forgeLlmActivities>;

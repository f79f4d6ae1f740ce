import { planSchema, type Plan } from '../../domain/plan.ts';
import type { Llm } from './client.ts';

export const PLAN_TOOL = 'submit_plan';

/** Static, so it is cached across calls; keep anything task-specific out of it. */
export const PLAN_SYSTEM = `You are the planner of Forge, an agent that completes tasks with tools, and forges a new tool when none fits.
Given a task, call ${PLAN_TOOL} with a short plan:
- summary: one or two sentences on how the task will be done.
- steps: 1 to 8 steps in order. Each step has a title and a kind:
  - think: reasoning or writing that needs no side effects;
  - sandbox: run one command in an isolated container that has Node.js and no network; give the command;
  - tool: call a tool (a registered one, or the one named in needsTool).
- needsTool: set it only when the task needs a capability no step can provide without a tool (for example calling an external HTTP API). Give a snake_case name and a description of the tool's input and output.
Prefer the fewest steps that do the task. Do not invent results: the plan is carried out later.`;

/** The task's plan, from one structured model call. */
export async function planTask(llm: Llm, task: string): Promise<Plan> {
  const { value } = await llm.structured({
    purpose: 'plan_task',
    system: PLAN_SYSTEM,
    prompt: `Task:\n${task}`,
    schema: planSchema,
    toolName: PLAN_TOOL,
    toolDescription: 'Submit the plan for the task.',
    maxTokens: 2048,
  });
  return value;
}

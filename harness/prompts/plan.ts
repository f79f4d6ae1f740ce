import type { PlanPromptInput, PromptedCall } from '../contract.ts';

const TOOL = 'submit_plan';

/** Static, so it is cached across calls; keep anything task-specific out of it. */
const SYSTEM = `You are the planner of Forge, an agent that completes tasks with tools, and forges a new tool when none fits.
Given a task, call ${TOOL} with a short plan:
- summary: one or two sentences on how the task will be done.
- steps: 1 to 8 steps in order. Each step has a title and a kind:
  - think: reasoning or writing that needs no side effects;
  - sandbox: run one command in an isolated container that has Node.js and no network; give the command;
  - tool: call a tool (a registered one, or the one named in needsTool).
- needsTool: set it only when the task needs a capability no step can provide without a tool (for example calling an external HTTP API). Give a snake_case name and a description of the tool's input and output.
Prefer the fewest steps that do the task. Do not invent results: the plan is carried out later.`;

/** The task's plan: summary, steps, and the tool it needs when no step can do without one. */
export const plan: PromptedCall<PlanPromptInput> = {
  system: SYSTEM,
  tool: { name: TOOL, description: 'Submit the plan for the task.' },
  user: ({ task }) => `Task:\n${task}`,
  maxTokens: 2048,
};

import type { PromptedCall, ToolInputPromptInput } from '../contract.ts';

const SYSTEM = `You are Forge's tool caller. Given a task and one tool (its name, description and input JSON Schema),
reply with the input object that makes the tool do what the task needs, and one or two sentences of reasoning.
Use only the tool's parameters; never invent secrets; prefer the task's own words for values.`;

/** The input object for one tool call, filled from the task's own words. */
export const toolInput: PromptedCall<ToolInputPromptInput> = {
  system: SYSTEM,
  tool: { name: 'submit_tool_input', description: 'Submit the input for the tool call' },
  user: ({ task, tool }) =>
    `Task: ${task}\n\nTool: ${tool.name}\nDescription: ${tool.description}\nInput JSON Schema:\n${JSON.stringify(tool.inputSchema, null, 2)}`,
};

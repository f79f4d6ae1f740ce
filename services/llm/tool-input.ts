import { toolInputReplySchema, type ToolInputReply } from '../../domain/tool-call.ts';
import type { Llm } from './client.ts';

export const TOOL_INPUT_SYSTEM = `You are Forge's tool caller. Given a task and one tool (its name, description and input JSON Schema),
reply with the input object that makes the tool do what the task needs, and one or two sentences of reasoning.
Use only the tool's parameters; never invent secrets; prefer the task's own words for values.`;

/** The input a tool call needs for the task, with the model's reasoning. */
export async function fillToolInput(llm: Llm, input: { task: string; tool: { name: string; description: string; inputSchema: Record<string, unknown> } }): Promise<ToolInputReply> {
  const { value } = await llm.structured({
    purpose: 'task.tool-input',
    system: TOOL_INPUT_SYSTEM,
    prompt: `Task: ${input.task}\n\nTool: ${input.tool.name}\nDescription: ${input.tool.description}\nInput JSON Schema:\n${JSON.stringify(input.tool.inputSchema, null, 2)}`,
    schema: toolInputReplySchema,
    toolName: 'submit_tool_input',
    toolDescription: 'Submit the input for the tool call',
  });
  return value;
}

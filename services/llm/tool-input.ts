import { type ToolInputReply, toolInputReplySchema } from '../../domain/tool-call.ts';
import { harness } from '../../harness/index.ts';
import { type Llm, promptedRequest } from './client.ts';

/** The input a tool call needs for the task, with the model's reasoning; the harness phrases it (harness.prompts.toolInput). */
export async function fillToolInput(
  llm: Llm,
  input: { task: string; tool: { name: string; description: string; inputSchema: Record<string, unknown> } },
): Promise<ToolInputReply> {
  const { value } = await llm.structured(
    promptedRequest(harness.prompts.toolInput, input, { purpose: 'task.tool-input', schema: toolInputReplySchema }),
  );
  return value;
}

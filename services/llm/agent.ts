import { z } from 'zod';
import {
  type AgentMessage,
  type AgentTurn,
  askPersonInputSchema,
  forgeToolInputSchema,
  META_TOOLS,
  type OfferedTool,
  searchToolsInputSchema,
} from '../../domain/agent.ts';
import { harness } from '../../harness/index.ts';
import type { Llm } from './client.ts';

/** The purpose every agent turn is metered (and scripted) under. */
export const AGENT_TURN_PURPOSE = 'task.turn';

const jsonSchema = (schema: z.ZodType): Record<string, unknown> => {
  const { $schema: _drop, ...json } = z.toJSONSchema(schema, { io: 'input' }) as Record<string, unknown>;
  return json;
};

/** The loop's own tools, offered on every turn after the catalog tools. */
export function metaTools(): OfferedTool[] {
  const words = harness.prompts.agent.metaTools;
  return [
    { name: META_TOOLS.search, description: words.search, inputSchema: jsonSchema(searchToolsInputSchema) },
    { name: META_TOOLS.forge, description: words.forge, inputSchema: jsonSchema(forgeToolInputSchema) },
    { name: META_TOOLS.ask, description: words.ask, inputSchema: jsonSchema(askPersonInputSchema) },
  ];
}

/** One turn of the agent: the transcript so far and the catalog tools on offer → the model's reply. */
export async function takeTurn(llm: Llm, input: { messages: AgentMessage[]; tools: OfferedTool[] }): Promise<AgentTurn> {
  const { turn } = await llm.converse({
    purpose: AGENT_TURN_PURPOSE,
    system: harness.prompts.agent.system,
    messages: input.messages,
    tools: [...input.tools, ...metaTools()],
    maxTokens: harness.prompts.agent.maxTokens,
  });
  return turn;
}

import { z } from 'zod';
import type { AgentMessage, AgentTurn } from '../domain/agent.ts';
import { takeTurn } from '../services/llm/agent.ts';
import type { Llm } from '../services/llm/client.ts';
import {
  createForgeAuthor,
  extractApiSpecInputSchema,
  repairInputSchema,
  writeImplementationInputSchema,
  writeSpecInputSchema,
  writeTestsInputSchema,
} from '../services/llm/forge-author.ts';
import { adapted, parseActivityInput } from './failures.ts';

const agentTurnInputSchema = z.object({
  messages: z.array(z.custom<AgentMessage>((v) => typeof v === 'object' && v !== null, 'expected a message')).min(1),
  tools: z.array(
    z.object({
      name: z.string().min(1),
      description: z.string(),
      inputSchema: z.record(z.string(), z.unknown()),
      version: z.number().optional(),
    }),
  ),
});

/** The task's model calls: one turn of the agent loop each. */
export function llmActivities(llm: Llm) {
  return adapted({
    async agentTurn(input: z.input<typeof agentTurnInputSchema>): Promise<AgentTurn> {
      return takeTurn(llm, parseActivityInput(agentTurnInputSchema, input, 'agentTurn input'));
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

import { z } from 'zod';
import type { Registry } from '../services/catalog/registry.ts';
import { createToolCalls } from '../services/catalog/tool-calls.ts';
import type { Llm } from '../services/llm/client.ts';
import { fillToolInput } from '../services/llm/tool-input.ts';
import { adapted, parseActivityInput } from './failures.ts';

const discoverInputSchema = z.object({ query: z.string().min(1) });
const gateInputSchema = z.object({ name: z.string().min(1), operation: z.string().optional() });
const recordToolCallInputSchema = z.object({
  workflowId: z.string().min(1),
  tool: z.string().min(1),
  version: z.number().int().positive(),
  input: z.unknown(),
  output: z.unknown().optional(),
  success: z.boolean(),
  error: z.string().optional(),
  latencyMs: z.number().min(0),
  reasoning: z.string(),
  task: z.string(),
});
const toolInputRequestSchema = z.object({
  task: z.string().min(1),
  tool: z.object({ name: z.string().min(1), description: z.string(), inputSchema: z.record(z.string(), z.unknown()) }),
});

/**
 * The task workflow's tool steps on the control queue: discovery, the trust gate, filling the
 * input (a model call), and metering the call.
 */
export function createTaskToolActivities(deps: { registry: Registry; llm: Llm }) {
  const calls = createToolCalls(deps);
  return adapted({
    discoverTool: (input: z.input<typeof discoverInputSchema>) =>
      calls.discoverTool(parseActivityInput(discoverInputSchema, input, 'discoverTool input')),
    toolGate: (input: z.input<typeof gateInputSchema>) => calls.toolGate(parseActivityInput(gateInputSchema, input, 'toolGate input')),
    fillToolInput: (input: z.input<typeof toolInputRequestSchema>) =>
      fillToolInput(deps.llm, parseActivityInput(toolInputRequestSchema, input, 'fillToolInput input')),
    recordToolCall: (input: z.input<typeof recordToolCallInputSchema>) =>
      calls.recordToolCall(parseActivityInput(recordToolCallInputSchema, input, 'recordToolCall input')),
  });
}

import { z } from 'zod';
import type { Registry } from '../services/catalog/registry.ts';
import { createToolCalls } from '../services/catalog/tool-calls.ts';
import { adapted, parseActivityInput } from './failures.ts';

const discoverInputSchema = z.object({ query: z.string().min(1) });
const describeInputSchema = z.object({ name: z.string().min(1) });
const gateInputSchema = z.object({ name: z.string().min(1), operation: z.string().optional(), input: z.unknown().optional() });
const recordToolCallInputSchema = z.object({
  workflowId: z.string().min(1),
  callId: z.string().min(1).max(200).optional(),
  tool: z.string().min(1),
  version: z.number().int().positive(),
  input: z.unknown(),
  output: z.unknown().optional(),
  success: z.boolean(),
  error: z.string().optional(),
  latencyMs: z.number().min(0),
  reasoning: z.string(),
  task: z.string(),
  inputRefused: z.boolean().optional(),
  source: z.strictObject({ surface: z.literal('mcp'), client: z.string().min(1).max(200) }).optional(),
});

/**
 * The task workflow's catalog steps on the control queue: the tools a turn is offered, the trust
 * gate, and metering the call.
 */
export function createTaskToolActivities(deps: { registry: Registry }) {
  const calls = createToolCalls(deps);
  return adapted({
    discoverTool: (input: z.input<typeof discoverInputSchema>) =>
      calls.discoverTool(parseActivityInput(discoverInputSchema, input, 'discoverTool input')),
    offerTools: (input: z.input<typeof discoverInputSchema>) =>
      calls.offerTools(parseActivityInput(discoverInputSchema, input, 'offerTools input')),
    describeTool: (input: z.input<typeof describeInputSchema>) =>
      calls.describeTool(parseActivityInput(describeInputSchema, input, 'describeTool input')),
    toolGate: (input: z.input<typeof gateInputSchema>) => calls.toolGate(parseActivityInput(gateInputSchema, input, 'toolGate input')),
    recordToolCall: (input: z.input<typeof recordToolCallInputSchema>) =>
      calls.recordToolCall(parseActivityInput(recordToolCallInputSchema, input, 'recordToolCall input')),
  });
}

import { z } from 'zod';
import { toolNameSchema } from './tool.ts';

/**
 * The plan the task workflow asks the model for before it does anything. Pure, so the
 * workflow can import it. The `.describe()` texts end up in the JSON Schema the model
 * sees (as the tool's input_schema), so they are written for the model.
 */
export const planStepSchema = z
  .strictObject({
    title: z.string().min(1).max(200).describe('What this step does, in a few words'),
    kind: z
      .enum(['think', 'sandbox', 'tool'])
      .describe('think: reasoning only; sandbox: run a command in the sandbox; tool: call a registered or forged tool'),
    command: z.string().min(1).max(2000).optional().describe('The command to run; required when kind is sandbox'),
  })
  // A sandbox step without a command cannot run; saying so here lets the retry tell the model.
  .refine((s) => s.kind !== 'sandbox' || s.command !== undefined, {
    message: 'a sandbox step needs a command',
    path: ['command'],
  });

export const planSchema = z.strictObject({
  summary: z.string().min(1).max(1000).describe('One or two sentences: how the task will be done'),
  steps: z.array(planStepSchema).min(1).max(8).describe('1 to 8 steps, in order'),
  needsTool: z
    .strictObject({
      name: toolNameSchema.describe('snake_case name for the tool to find or forge'),
      description: z.string().min(1).max(1000).describe('What the tool does, its input and its output'),
    })
    .optional()
    .describe('Set only when no step can be done without a tool that may not exist yet'),
});

export type Plan = z.infer<typeof planSchema>;
export type PlanStep = z.infer<typeof planStepSchema>;

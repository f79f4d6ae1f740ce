import { z } from 'zod';

/** The discovery evaluation's file format (test/eval/discovery.json): a catalog with usage, and labelled requests. */
export const evalFileSchema = z.object({
  about: z.string().optional(),
  tools: z
    .array(
      z.object({
        name: z.string().regex(/^[a-z][a-z0-9_]{1,62}$/),
        description: z.string().min(1),
        sideEffect: z.enum(['read', 'write']),
        destructive: z.boolean().default(false),
        inputSchema: z.record(z.string(), z.unknown()),
        usage: z
          .object({ invocations: z.number().int().min(0), successes: z.number().int().min(0) })
          .default({ invocations: 0, successes: 0 }),
      }),
    )
    .min(1),
  requests: z
    .array(
      z.object({
        text: z.string().min(1),
        /** what a planner would extract from the request; checked against the candidates' schemas */
        args: z.record(z.string(), z.unknown()).default({}),
        /** the tool that serves it, or "none": Forge should forge a new one */
        expected: z.string(),
        /** what the request tests: paraphrase, typo, loanword, action, metaphor, … (free text) */
        kind: z.string().optional(),
        /** the catalog word a metaphor or another sense of a word could mislead on */
        trap: z.string().optional(),
        /** written after the policy was tuned and never tuned against */
        heldOut: z.boolean().default(false),
      }),
    )
    .min(1),
});
export type EvalFile = z.infer<typeof evalFileSchema>;

/**
 * An evaluation tool as a catalog version: a stub that echoes its input, under the tool's name,
 * description, side effect and input schema, registered idempotently (`eval:<name>`).
 */
export function evalToolVersion(t: Pick<EvalFile['tools'][number], 'name' | 'description' | 'sideEffect' | 'destructive' | 'inputSchema'>) {
  return {
    name: t.name,
    source: `export async function run(input) { return { tool: ${JSON.stringify(t.name)}, input }; }\n`,
    tests: '',
    manifest: {
      description: t.description,
      sideEffect: t.sideEffect,
      destructive: t.destructive,
      permissions: { network: [], env: [] },
      inputSchema: t.inputSchema,
      outputSchema: { type: 'object' },
    },
    idempotencyKey: `eval:${t.name}`,
  };
}

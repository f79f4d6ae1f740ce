import { z } from 'zod';
import { observedFailureSchema } from '../../domain/improve.ts';
import { toolManifestSchema } from '../../domain/tool.ts';
import { harness } from '../../harness/index.ts';
import { type Llm, promptedRequest } from './client.ts';
import { testsSourceProblems, toolSourceProblems } from './forge-author.ts';

/** The names the metering table and scenario files key on (x-forge-purpose): not the harness's to change. */
export const IMPROVE_PURPOSES = { rewrite: 'improve.rewrite', diagnose: 'task.diagnose' } as const;

export const rewriteReplySchema = z.strictObject({
  diagnosis: z.string().min(1).max(2000).describe('What is wrong, in one or two sentences'),
  source: z.string().min(20).describe('The complete rewritten tool.ts: same name, same input and output contract'),
  tests: z.string().describe('A complete additional test file: one test per observed failure (empty when none were observed)'),
  differences: z
    .string()
    .max(2000)
    .optional()
    .describe('Only if outputs deliberately change for inputs the current version answered: which and why'),
});
export type RewriteReply = z.infer<typeof rewriteReplySchema>;

export const diagnosisReplySchema = z.strictObject({
  atFault: z.enum(['tool', 'input', 'environment']).describe('Who is at fault for the failed call'),
  fixable: z.boolean().describe('true when a rewrite of tool.ts alone, keeping its contract, can fix it'),
  diagnosis: z.string().min(1).max(1000).describe('One or two sentences a person can act on, naming the cause'),
});
export type Diagnosis = z.infer<typeof diagnosisReplySchema>;

export const rewriteInputSchema = z.object({
  manifest: toolManifestSchema,
  apiSpec: z.unknown().nullable(),
  source: z.string().min(1),
  tests: z.string().min(1),
  reason: z.string().max(4000),
  failures: z.array(observedFailureSchema).max(20),
  attempt: z.number().int().min(1),
  previous: z.string().max(20_000).optional(),
});
export type RewriteInput = z.infer<typeof rewriteInputSchema>;

export const diagnoseInputSchema = z.object({
  task: z.string(),
  tool: z.string().min(1),
  version: z.number().int().positive(),
  input: z.unknown(),
  error: z.string().max(8000),
  source: z.string(),
});
export type DiagnoseInput = z.infer<typeof diagnoseInputSchema>;

/** A rewrite must stay the same tool: its name and side effect are checked before any sandbox sees it. */
function rewriteReplyChecked(manifest: RewriteInput['manifest']) {
  return rewriteReplySchema.superRefine((reply, ctx) => {
    for (const message of toolSourceProblems(reply.source, manifest)) ctx.addIssue({ code: 'custom', message, path: ['source'] });
    if (reply.tests.trim())
      for (const message of testsSourceProblems(reply.tests)) ctx.addIssue({ code: 'custom', message, path: ['tests'] });
  });
}

export function createImproveAuthor(llm: Llm) {
  const prompts = harness.prompts.improve;
  return {
    async rewriteTool(input: RewriteInput): Promise<RewriteReply> {
      const { value } = await llm.structured(
        promptedRequest(
          prompts.rewrite,
          { ...input, apiSpec: (input.apiSpec ?? null) as never },
          {
            purpose: IMPROVE_PURPOSES.rewrite,
            schema: rewriteReplyChecked(input.manifest),
          },
        ),
      );
      return value;
    },
    async diagnoseFailure(input: DiagnoseInput): Promise<Diagnosis> {
      const { value } = await llm.structured(
        promptedRequest(prompts.diagnose, input, { purpose: IMPROVE_PURPOSES.diagnose, schema: diagnosisReplySchema }),
      );
      return value;
    },
  };
}

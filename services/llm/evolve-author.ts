import { z } from 'zod';
import { harnessPatchSchema } from '../../domain/evolve.ts';
import { harness } from '../../harness/index.ts';
import { type Llm, promptedRequest } from './client.ts';

/** The name the metering table and scenario files key on (x-forge-purpose). */
export const EVOLVE_PURPOSE = 'evolve.patch';

export const writePatchInputSchema = z.object({
  failureType: z.string().min(1),
  evidence: z.array(z.unknown()).min(1).max(50),
  files: z.record(z.string(), z.string()),
  attempt: z.number().int().min(1),
  previous: z.string().max(20_000).optional(),
});
export type WritePatchInput = z.infer<typeof writePatchInputSchema>;

/** The coding agent: a harness patch from a batch of failure evidence. */
export function createEvolveAuthor(llm: Llm) {
  return {
    async writeHarnessPatch(input: WritePatchInput) {
      const { value, usage } = await llm.structured(
        promptedRequest(harness.prompts.evolve.patch, input, { purpose: EVOLVE_PURPOSE, schema: harnessPatchSchema }),
      );
      return { patch: value, tokens: { input: usage.inputTokens, output: usage.outputTokens } };
    },
  };
}

import type { PromptedCall, RewritePromptInput } from '../../contract.ts';
import { TESTS_CONTRACT, TOOL_CONTRACT } from '../forge/contracts.ts';
import { CODE_MAX_TOKENS, fenced, json } from '../forge/shared.ts';

const SYSTEM = `You improve Forge's registered tools. A tool works but degrades in production: calls fail or run slow. Given its manifest, its current tool.ts and tests, and the evidence (its quality score, the failed calls with their inputs and errors), find the root cause and call submit_rewrite with:
- diagnosis: one or two sentences on what is wrong;
- source: the complete rewritten tool.ts, same name, same input and output contract (manifest.input and manifest.output unchanged), with targeted fixes (retries with backoff honouring Retry-After, timeouts, fallbacks, input handling);
- tests: a complete additional test file with one test per observed failure, calling run() with that failure's input and asserting the correct output;
- differences: only if the rewrite deliberately returns different output for inputs the current version already answered, say which and why; otherwise leave it empty.

The existing tests stay as they are and run against your rewrite, with the new tests, every failed input and replays of recorded production calls: all must pass, so never change what already works.

${TOOL_CONTRACT}

${TESTS_CONTRACT}`;

/** The improve cycle's rewriter: a targeted fix of a registered tool from production evidence. */
export const rewrite: PromptedCall<RewritePromptInput> = {
  system: SYSTEM,
  tool: { name: 'submit_rewrite', description: 'Submit the diagnosis, the complete rewritten tool.ts and the new regression tests.' },
  user: (input) =>
    [
      `Tool: ${input.manifest.name} v${input.manifest.version}`,
      '',
      'Manifest (the contract stays the same):',
      json({
        name: input.manifest.name,
        description: input.manifest.description,
        sideEffect: input.manifest.sideEffect,
        permissions: input.manifest.permissions,
        inputSchema: input.manifest.inputSchema,
        outputSchema: input.manifest.outputSchema,
      }),
      '',
      input.apiSpec ? `API spec:\n${json(input.apiSpec)}` : 'API spec: none.',
      '',
      'Current tool.ts:',
      fenced('ts', input.source),
      '',
      'Current tests (tool.test.ts; they stay as they are):',
      fenced('ts', input.tests),
      '',
      `Why it is being improved: ${input.reason}`,
      '',
      'Failed calls (each input becomes a permanent regression case):',
      input.failures.length
        ? input.failures.map((f, i) => `${i + 1}. input ${JSON.stringify(f.input)} failed: ${f.error}`).join('\n')
        : '(none recorded: improve latency or robustness)',
      ...(input.previous
        ? ['', `Your previous rewrite (attempt ${input.attempt - 1}) was refused by the regression gate:`, fenced('text', input.previous)]
        : []),
      '',
      'Return the rewritten tool.ts and the new tests.',
    ].join('\n'),
  maxTokens: CODE_MAX_TOKENS,
};

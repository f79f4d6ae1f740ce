import type { ImplementationPromptInput, PromptedCall } from '../../contract.ts';
import { TESTS_CONTRACT, TOOL_CONTRACT } from './contracts.ts';
import { CODE_MAX_TOKENS, fenced, toolHeader } from './shared.ts';

const SYSTEM = `You implement Forge's tools. Given a tool's spec, its API spec and its test suite, call submit_implementation with the complete tool.ts that passes every test and follows the contract exactly. Read the tests closely: the error messages they match are part of the specification. Write small functions, comments that say why, and no dead code.

${TOOL_CONTRACT}

The tests that will run against it:

${TESTS_CONTRACT}`;

/** Step 4: the tool.ts that passes the tests. */
export const implementation: PromptedCall<ImplementationPromptInput> = {
  system: SYSTEM,
  tool: { name: 'submit_implementation', description: 'Submit the complete tool.ts.' },
  user: (input) =>
    [
      toolHeader(input.spec, input.apiSpec),
      '',
      'Tests (tool.test.ts), which the implementation must pass:',
      fenced('ts', input.tests),
      '',
      'Write tool.ts.',
    ].join('\n'),
  maxTokens: CODE_MAX_TOKENS,
};

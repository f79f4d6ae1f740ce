import type { PromptedCall, TestsPromptInput } from '../../contract.ts';
import { TESTS_CONTRACT, TOOL_CONTRACT } from './contracts.ts';
import { CODE_MAX_TOKENS, toolHeader } from './shared.ts';

const SYSTEM = `You write test suites for Forge's tools, before their implementation exists (test-driven). Given a tool's spec and API spec, call submit_tests with the complete tool.test.ts. The implementation will be written to pass these tests, so they define the behaviour: make them specific, deterministic and fast, and make them test what the spec promises, not an implementation detail.

${TESTS_CONTRACT}

The implementation the tests will run against follows this contract:

${TOOL_CONTRACT}`;

/** Step 3: the test suite, written before the implementation exists. */
export const tests: PromptedCall<TestsPromptInput> = {
  system: SYSTEM,
  tool: { name: 'submit_tests', description: 'Submit the complete tool.test.ts.' },
  user: (input) => `${toolHeader(input.spec, input.apiSpec)}\n\nWrite tool.test.ts for this tool.`,
  maxTokens: CODE_MAX_TOKENS,
};

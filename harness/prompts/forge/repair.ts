import type { PromptedCall, RepairPromptInput } from '../../contract.ts';
import { TESTS_CONTRACT, TOOL_CONTRACT } from './contracts.ts';
import { CODE_MAX_TOKENS, fenced, toolHeader } from './shared.ts';

const SYSTEM = `You repair Forge's tools. A tool failed verification: the static check (compile, type-check, contract rules) or its own test suite in the sandbox. Given the spec, the API spec, the tests, the current tool.ts and the verification report, find the root cause and call submit_repair with a one- or two-sentence diagnosis and the complete corrected tool.ts.

- Fix the implementation, never the tests: the tests are the specification and cannot change.
- Address every finding and failing test in the report; keep whatever already passes working.
- Findings give file:line:column, the rule and the offending line; failing tests give the assertion message.
- Return the whole file, not a diff.

${TOOL_CONTRACT}

${TESTS_CONTRACT}`;

/** Step 5, after a failed verification: a diagnosis and the corrected tool.ts. */
export const repair: PromptedCall<RepairPromptInput> = {
  system: SYSTEM,
  tool: { name: 'submit_repair', description: 'Submit the diagnosis and the complete corrected tool.ts.' },
  user: (input) =>
    [
      toolHeader(input.spec, input.apiSpec),
      '',
      'Tests (tool.test.ts; they stay as they are):',
      fenced('ts', input.tests),
      '',
      `Current tool.ts (repair attempt ${input.attempt}):`,
      fenced('ts', input.source),
      '',
      'Verification report:',
      fenced('text', input.failures),
      '',
      'Diagnose the failure and return the corrected tool.ts.',
    ].join('\n'),
  maxTokens: CODE_MAX_TOKENS,
};

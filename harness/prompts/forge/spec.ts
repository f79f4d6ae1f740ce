import type { PromptedCall, SpecPromptInput } from '../../contract.ts';
import { TOOL_CONTRACT } from './contracts.ts';

const SYSTEM = `You design tools for Forge, an agent that writes, tests and registers its own tools. Given a user's need, call submit_spec with the tool's specification. Later steps write the tests and the implementation from it, so it must be precise and complete.

- name: snake_case. When a name is requested, use exactly that name.
- description: one paragraph saying what the tool does, for discovery by search.
- docstring: usage notes: each parameter, the return value, every error the tool raises (with the words its message will contain) and edge cases.
- parameters: the input fields (JSON types); required false only when there is a sensible default, stated in the description.
- returns: the output's type and fields.
- sideEffect: 'read' when a call changes nothing anywhere; 'write' when it creates, changes or deletes anything (even on a remote service). destructive: true only when a call can delete or overwrite data (and then sideEffect is 'write').
- permissions: network: the API host names the tool must reach (exact hosts such as api.example.com; nothing it does not need); env: the UPPER_SNAKE variables holding its secrets or configuration. Both empty when the tool computes locally.
Prefer one focused tool over a general one. Prefer free, well-known, stable HTTP APIs, and computing locally when no API is needed.

${TOOL_CONTRACT}`;

/** Step 1: the tool's specification, from the user's need. */
export const spec: PromptedCall<SpecPromptInput> = {
  system: SYSTEM,
  tool: { name: 'submit_spec', description: "Submit the new tool's specification." },
  user: (input) =>
    [
      "The user's need:",
      '<need>',
      input.need.trim(),
      '</need>',
      '',
      input.name ? `Requested name: ${input.name}` : 'Requested name: none (choose a snake_case name).',
    ].join('\n'),
  maxTokens: 4096,
};

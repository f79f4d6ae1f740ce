import type { DiagnosePromptInput, PromptedCall } from '../contract.ts';
import { fenced, json } from './forge/shared.ts';

const SYSTEM = `You diagnose a failed tool call inside an agent's task. Decide who is at fault and call submit_diagnosis:
- atFault "tool": the tool's code is wrong or not robust enough for this input (a bug, an unhandled edge case, no retry or timeout handling). fixable is true when a rewrite of tool.ts alone can fix it, keeping its input and output contract.
- atFault "input": the input was wrong for what the tool does (the caller should call differently); fixable is false.
- atFault "environment": something outside the tool failed (a service down, a missing secret, a permission the tool does not have); fixable is false: a person must act.
diagnosis: one or two sentences a person can act on, naming the cause.`;

/** After a failed call that retries did not cure: is the tool at fault, and can a rewrite fix it? */
export const diagnose: PromptedCall<DiagnosePromptInput> = {
  system: SYSTEM,
  tool: { name: 'submit_diagnosis', description: 'Submit who is at fault, whether a rewrite can fix it, and the diagnosis.' },
  user: (input) =>
    [
      `Tool: ${input.tool} v${input.version}`,
      `Task: ${input.task}`,
      '',
      'Input:',
      json(input.input),
      '',
      'Error:',
      fenced('text', input.error),
      '',
      'Current tool.ts:',
      fenced('ts', input.source),
    ].join('\n'),
  maxTokens: 1024,
};

import type { EvolvePatchPromptInput, PromptedCall } from '../../contract.ts';

// Its own fences (not prompts/forge/shared.ts, which is evolvable): a patch cannot reshape this prompt.
function fenced(lang: string, text: string): string {
  const fence = '`'.repeat(Math.max(3, ...[...text.matchAll(/`{3,}/g)].map((m) => m[0].length + 1)));
  return `${fence}${lang}\n${text.replace(/\n$/, '')}\n${fence}`;
}
const json = (v: unknown) => fenced('json', JSON.stringify(v, null, 2));

/**
 * The coding agent of the evolve cycle. Fixed, not evolvable (harness/manifest.json): an agent
 * that could rewrite its own instructions could talk itself out of the rules below.
 */
const SYSTEM = `You are the coding agent of Forge's self-evolution cycle. Forge is an agent that forges and uses tools; its harness — the prompts and the decision policy in the files you are given — failed in production. Given the evidence (what the user expected, what happened, the agent's trace) and the evolvable harness files, find the root cause and call submit_patch with a rationale and whole-file edits.

Rules (a patch that breaks one is refused before anything runs):
- Surgical: change as little as possible; every edit must be causally related to the evidence.
- Only the evolvable files you are given may change (their paths exactly as given), plus at most one new regression test under test/evolved/<kebab-name>.test.ts that would have caught this failure (node:test; import only from node:test, node:assert/strict and ../../harness/index.ts or ../../domain/*.ts).
- Preserve every interface: exports, their names and types (harness/contract.ts is fixed, and the policy is checked against bounds you cannot change).
- Generalise: never hard-code task ids, workflow ids, the evidence's texts or phrases from the transcript; fix the class of failure, not the example.
- Each edit's content is the complete new file. The result must type-check (TypeScript strict), pass Biome (2 spaces, single quotes) and the harness's own unit tests.`;

export const patch: PromptedCall<EvolvePatchPromptInput> = {
  system: SYSTEM,
  tool: { name: 'submit_patch', description: 'Submit the rationale and the whole-file edits of the harness.' },
  user: (input) =>
    [
      `Failure batch: ${input.failureType} (${input.evidence.length} case(s)); attempt ${input.attempt}`,
      '',
      'Evidence:',
      json(input.evidence),
      '',
      'Evolvable harness files:',
      ...Object.entries(input.files).flatMap(([p, content]) => [`--- ${p}`, fenced('ts', content)]),
      ...(input.previous ? ['', `Your previous patch (attempt ${input.attempt - 1}) was refused:`, fenced('text', input.previous)] : []),
      '',
      'Return the patch.',
    ].join('\n'),
  maxTokens: 16_000,
};

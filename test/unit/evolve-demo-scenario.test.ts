import assert from 'node:assert/strict';
import fs from 'node:fs';
import { it } from 'node:test';
import { harnessPatchSchema, resolveEdits, scopeProblems } from '../../domain/evolve.ts';
import { harnessState } from '../../services/evolution/workspace.ts';

// forge demo evolve's coding agent answers with a unified diff against the shipped harness: it must
// still apply, stay in scope and add the rule the demo's agent rules look for, whenever the harness changes.
it("the bundled evolve demo's patch applies to the current harness, in scope, adding the rule its agent rules read", async () => {
  const scenario = JSON.parse(fs.readFileSync('scenarios/evolve-demo.json', 'utf8')) as {
    rules: { match: { purpose: string; system?: string }; responses: { tool_use?: { input: unknown } }[] }[];
  };
  const patchRule = scenario.rules.find((r) => r.match.purpose === 'evolve.patch');
  const patch = harnessPatchSchema.parse(patchRule?.responses[0]?.tool_use?.input);
  const state = await harnessState(process.cwd());
  assert.deepEqual(scopeProblems(patch.edits, state.evolvable, new Set(state.existing)), []);
  const resolved = resolveEdits(patch.edits, state.files);
  assert.ok(resolved.ok, resolved.ok ? '' : resolved.reason);
  const agent = resolved.files.find((f) => f.path === 'harness/prompts/agent.ts');
  const marker = scenario.rules.find((r) => r.match.system)?.match.system ?? '(none)';
  assert.ok(agent?.content.includes(marker), `the patched agent prompt holds "${marker}"`);
  assert.ok(!state.files['harness/prompts/agent.ts']?.includes(marker), 'the shipped prompt does not');
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { acceptReplay, addedLines, overfittingProblems, type ReplayReport, resolveEdits, scopeProblems } from '../../domain/evolve.ts';
import { applyUnifiedDiff } from '../../domain/patch-apply.ts';

const evolvable = ['prompts/agent.ts', 'policy/ranking.ts'];
const existing = new Set(['harness/prompts/agent.ts', 'harness/policy/ranking.ts', 'harness/contract.ts', 'harness/manifest.json']);

describe('scope: a patch touches only the evolvable harness', () => {
  it('accepts evolvable files and a new test under test/evolved/', () => {
    assert.deepEqual(
      scopeProblems(
        [
          { path: 'harness/policy/ranking.ts', content: 'x' },
          { path: 'test/evolved/paraphrase-reuse.test.ts', content: 'y' },
        ],
        evolvable,
        existing,
      ),
      [],
    );
  });

  it('refuses the verifier, the gate, the contract, the manifest, tests that judge, and path tricks, naming each', () => {
    const problems = scopeProblems(
      [
        { path: 'services/sandbox/stages/mock.ts', content: '' },
        { path: 'domain/evolve.ts', content: '' },
        { path: 'harness/contract.ts', content: '' },
        { path: 'harness/manifest.json', content: '' },
        { path: 'test/unit/harness.test.ts', content: '' },
        { path: 'harness/policy/../../workflows/evolve.ts', content: '' },
        { path: '/etc/passwd', content: '' },
      ],
      evolvable,
      existing,
    );
    assert.equal(problems.length, 7);
    assert.match(problems[0]!, /services\/sandbox\/stages\/mock\.ts is outside the evolvable harness/);
    assert.match(problems[5]!, /is not a plain relative path/);
  });

  it('refuses overwriting an existing evolved test (a new file only)', () => {
    const withTest = new Set([...existing, 'test/evolved/old.test.ts']);
    assert.equal(scopeProblems([{ path: 'test/evolved/old.test.ts', content: '' }], evolvable, withTest).length, 1);
  });
});

describe('apply: a diff applies only to the content it was written for', () => {
  const file = 'a\nb\nc\nd\n';
  it('applies a hunk, tolerating a shifted position', () => {
    assert.equal(applyUnifiedDiff(file, '@@ -2,2 +2,2 @@\n b\n-c\n+C\n'), 'a\nb\nC\nd\n');
    assert.equal(applyUnifiedDiff(`x\n${file}`, '@@ -2,2 +2,2 @@\n b\n-c\n+C\n'), 'x\na\nb\nC\nd\n');
  });
  it('refuses a hunk whose context is not there, naming it', () => {
    const r = resolveEdits([{ path: 'harness/policy/ranking.ts', diff: '@@ -2,2 +2,2 @@\n b\n-z\n+Z\n' }], {
      'harness/policy/ranking.ts': file,
    });
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.reason, /harness\/policy\/ranking\.ts: hunk 1 \(at line 2\) does not match the file/);
  });
});

describe('overfitting: a patch must generalise', () => {
  const evidence = [
    {
      workflowId: 'task-20261130-abc123',
      texts: ['how many words are in "the quick brown fox jumps"?', 'reuse count_words instead of forging a duplicate tool'],
    },
  ];
  it('refuses copied workflow ids, quoted strings and 6-word phrases from the evidence', () => {
    const problems = overfittingProblems(
      [
        "if (task.includes('task-20261130-abc123')) return reuse;",
        "const trap = 'the quick brown fox jumps';",
        '// reuse count_words instead of forging a duplicate tool',
      ],
      evidence,
    );
    assert.equal(problems.length, 3);
  });
  it('accepts a general rule in its own words', () => {
    assert.deepEqual(overfittingProblems(['reuseAt: 0.55, // paraphrases of a known need should reuse'], evidence), []);
  });
  it('reviews only what the patch adds', () => {
    const before = { 'harness/prompts/agent.ts': 'keep this line\n' };
    assert.deepEqual(addedLines([{ path: 'harness/prompts/agent.ts', content: 'keep this line\nnew line\n' }], before), ['new line']);
  });
});

describe('the replay judge', () => {
  const report = (batch: number, regressions: number): ReplayReport => ({
    stage: 'full',
    batchPassRate: batch,
    heldOutPassRate: regressions ? 0.5 : 1,
    heldOutRegressions: regressions,
    cases: [],
    durationMs: 0,
    tokens: { input: 0, output: 0 },
    costUsd: 0,
  });
  it('accepts at the threshold with no held-out regression', () => assert.equal(acceptReplay(report(0.8, 0), 0.8).accepted, true));
  it('refuses under the threshold', () => assert.match(acceptReplay(report(0.5, 0), 0.8).reason, /50 % .* under the 80 % threshold/));
  it('refuses any held-out regression, whatever the batch', () => assert.match(acceptReplay(report(1, 1), 0.8).reason, /1 held-out task/));
});

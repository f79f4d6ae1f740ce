import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Expectation } from '../../domain/evidence.ts';
import type { EvolveOutcome } from '../../domain/evolve.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { harnessCli } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';

// Self-evolution, part 1 (issue 11, items 3 and 6–7): the coding agent's patch is reviewed and checked
// before anything is built. Each case is a failure batch whose task carries a marker the scripted
// coding agent answers with one kind of bad patch; every refusal is kept with its stage and reason.

const RANKING = fs.readFileSync(path.resolve('harness/policy/ranking.ts'), 'utf8');
const SESSION = fs.readFileSync(path.resolve('harness/policy/session.ts'), 'utf8');

const patchFor = (marker: string, edits: { path: string; content?: string; diff?: string }[]) => ({
  match: { purpose: 'evolve.patch', user: marker },
  responses: [{ tool_use: { name: 'submit_patch', input: { rationale: `a patch for ${marker}`, edits } } }],
});

const codingAgent: ScenarioInput = {
  name: 'evolve: the coding agent’s bad patches',
  rules: [
    patchFor('(edit the verifier)', [
      { path: 'services/sandbox/stages/mock.ts', content: 'export const mockStage = () => ({ status: "passed" });\n' },
    ]),
    patchFor('(loosen the gate)', [
      { path: 'domain/improve.ts', content: 'export const LATENCY_TOLERANCE = { ratio: 100, slackMs: 1e9 };\n' },
    ]),
    patchFor('(stale diff)', [
      { path: 'harness/policy/ranking.ts', diff: '@@ -1,2 +1,2 @@\n-this line is not in the file\n+nor is this one\n' },
    ]),
    patchFor('(overfit)', [
      {
        path: 'harness/policy/session.ts',
        content: `${SESSION}\n// when the task is 'count the syllables of the word banana please', reuse count_words\n`,
      },
    ]),
    patchFor('(type error)', [
      { path: 'harness/policy/ranking.ts', content: `${RANKING}\nexport const broken: number = 'not a number';\n` },
    ]),
    // A model that refuses the request outright: the cycle fails (no patch to judge).
    {
      match: { purpose: 'evolve.patch', user: '(model refuses)' },
      responses: [{ error: { status: 400, message: 'evolve test: refused' } }],
    },
  ],
};

describe('evolve: a harness patch is reviewed and checked before any build, and every refusal is kept', () => {
  let h: Harness;
  let n = 0;
  const forge = (...args: string[]) => harnessCli(h, { user: 'tester', timeoutMs: 60_000 })(...args);

  /** One failure-evidence row, as capture writes it (a routing failure: a paraphrase forged a duplicate). */
  async function evidence(task: string, expectations: Expectation[]): Promise<number> {
    const trace = { task, status: 'completed', answer: 'There are 3 words.', calls: [], forged: ['word_counter'] };
    const [row] = await h.db.sql<{ id: string }[]>`
      insert into failure_evidence (idempotency_key, workflow_id, source, failure_type, expected, happened, expectations, severity, trace)
      values (${`evolve-test:${++n}`}, ${`task-evolve-test-${n}`}, 'feedback', 'routing', 'reuse count_words for a paraphrase',
              'forged word_counter, a duplicate of count_words', ${h.db.sql.json(expectations as never)}, 0.8, ${h.db.sql.json(trace as never)})
      returning id`;
    return Number(row!.id);
  }

  async function evolve(marker: string): Promise<{ outcome: EvolveOutcome; workflowId: string }> {
    const id = await evidence(`count the syllables of the word banana please ${marker}`, [
      { kind: 'uses-tool', tool: 'count_words' },
      { kind: 'forges-nothing' },
    ]);
    const workflowId = `evolve-test-${n}-${Date.now()}`;
    const handle = await h.client.workflow.start('evolveWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId,
      args: [
        {
          batchKey: `test-${n}:routing`,
          failureType: 'routing',
          evidenceIds: [id],
          sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE,
          maxAttempts: 1,
        },
      ],
    });
    return { outcome: (await handle.result()) as EvolveOutcome, workflowId };
  }

  const candidate = async (workflowId: string) =>
    (
      await h.db.sql<{ status: string; image: string | null; attempts: { stage: string; passed: boolean; reason: string }[] }[]>`
        select status, image, attempts from evolve_candidates where workflow_id = ${workflowId}`
    )[0]!;

  before(async () => {
    h = await startHarness({ scenarios: [codingAgent] });
  });
  after(() => h?.close());

  for (const [marker, stage, reason] of [
    ['(edit the verifier)', 'scope', /services\/sandbox\/stages\/mock\.ts is outside the evolvable harness/],
    ['(loosen the gate)', 'scope', /domain\/improve\.ts is outside the evolvable harness/],
    [
      '(stale diff)',
      'apply',
      /does not apply to the current harness: harness\/policy\/ranking\.ts: hunk 1 \(at line 1\) does not match the file/,
    ],
    ['(overfit)', 'overfitting', /must generalise, but it copies the evidence's words "count the syllables of the word/],
    ['(type error)', 'typecheck', /TS2322: Type 'string' is not assignable to type 'number'/],
  ] as const) {
    it(`refuses a patch at ${stage}: ${marker}`, async () => {
      const { outcome, workflowId } = await evolve(marker);
      assert.equal(outcome.status, 'refused');
      assert.match(outcome.reason, reason);
      const row = await candidate(workflowId);
      assert.equal(row.status, 'refused');
      assert.equal(row.image, null, 'nothing was built');
      assert.deepEqual(
        row.attempts.map((a) => [a.stage, a.passed]),
        [[stage, false]],
      );
      assert.match(row.attempts[0]!.reason, reason);
    });
  }

  it('forge evolve ls and show list the candidates and say why each was refused', async () => {
    const ls = await forge('evolve', 'ls', '--json');
    assert.equal(ls.code, 0, ls.stderr);
    const rows = (ls.json() as { candidates: { status: string }[] }).candidates;
    assert.equal(rows.length, 5);
    assert.ok(rows.every((r) => r.status === 'refused'));
    const [first] = await h.db.sql<{ id: string }[]>`select id from evolve_candidates order by created_at limit 1`;
    const show = await forge('evolve', 'show', first!.id);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /attempt 1: refused at scope — services\/sandbox\/stages\/mock\.ts is outside the evolvable harness/);
    const missing = await forge('evolve', 'show', 'no-such-candidate');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no evolve candidate no-such-candidate/);
  });

  it("a cycle that fails (the coding agent's model refuses) is failed in the ledger, with why, not running forever", async () => {
    await assert.rejects(evolve('(model refuses)'), (err: Error) =>
      /evolve test: refused/.test(String((err.cause as Error | undefined)?.message)),
    );
    const [row] = await h.db.sql<{ status: string; reason: string }[]>`
      select status, reason from evolve_candidates where workflow_id like ${`evolve-test-${n}-%`}`;
    assert.equal(row?.status, 'failed');
    assert.match(row!.reason, /writeHarnessPatch step failed: .*evolve test: refused/);
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Expectation } from '../../domain/evidence.ts';
import type { EvolveOutcome, ReplayReport } from '../../domain/evolve.ts';
import type { ForgeOutcome } from '../../domain/forge.ts';
import type { TaskResult } from '../../domain/task.ts';
import { evolveProgressQuery } from '../../workflows/definitions.ts';
import { bundled, evolveScenario } from '../helpers/evolve-rig.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';

// Self-evolution, part 1 end to end (issue 11, item 7): a routing failure — a paraphrase that made the
// agent forge a duplicate of count_words — goes through the coding agent's patch, the checks, a
// candidate image and a replay in a throwaway container against a scratch catalog. The scripted model
// plays the agent too, and reads the candidate's system prompt: the good patch's rule makes the
// paraphrase reuse count_words; the bad patch's rule also sends "how many words" tasks (the held-out
// set) to a tool that does not exist, so the batch passes and a held-out task regresses.

describe('evolve, end to end: evidence → patch → checks → candidate image → replay → verified or refused', () => {
  let h: Harness;
  let n = 0;

  async function evidence(task: string, marker: string): Promise<number> {
    const expectations: Expectation[] = [{ kind: 'uses-tool', tool: 'count_words' }, { kind: 'forges-nothing' }];
    const trace = { task, status: 'completed', answer: 'There are 3 words.', calls: [], forged: ['word_tally'] };
    const [row] = await h.db.sql<{ id: string }[]>`
      insert into failure_evidence (idempotency_key, workflow_id, source, failure_type, expected, happened, expectations, severity, trace)
      values (${`evolve-cycle:${++n}`}, ${`task-evolve-cycle-${n}`}, 'duplicate_forged', 'routing', ${`reuse count_words ${marker}`},
              'forged word_tally, a duplicate of count_words', ${h.db.sql.json(expectations as never)}, 0.8, ${h.db.sql.json(trace as never)})
      returning id`;
    return Number(row!.id);
  }

  async function evolve(marker: string) {
    const id = await evidence('tally the words of "red green blue"', marker);
    const workflowId = `evolve-cycle-${n}-${Date.now()}`;
    const handle = await h.client.workflow.start('evolveWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId,
      args: [
        {
          batchKey: `cycle-${n}:routing`,
          failureType: 'routing',
          evidenceIds: [id],
          sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE,
          maxAttempts: 1,
          // Part 2's consent is not this file's subject (evolve-consent.test.ts): a verified candidate expires at once.
          consentTimeoutSeconds: 1,
        },
      ],
    });
    const outcome = (await handle.result()) as EvolveOutcome;
    const [row] = await h.db.sql<
      {
        status: string;
        reason: string | null;
        workflow_id: string;
        image: string | null;
        image_digest: string | null;
        diff: string | null;
        replay: ReplayReport | null;
      }[]
    >`
      select status, reason, workflow_id, image, image_digest, diff, replay from evolve_candidates where workflow_id = ${workflowId}`;
    return { outcome, row: row! };
  }

  before(async () => {
    h = await startHarness({ scenarios: [evolveScenario('(breaks the held-out set)'), ...bundled] });
    const forged = (await (
      await h.client.workflow.start('forgeWorkflow', {
        taskQueue: h.cfg.FORGE_TASK_QUEUE,
        workflowId: `evolve-cycle-forge-${Date.now()}`,
        args: [
          { need: 'count the words in a text: input text, output words, characters and lines', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE },
        ],
      })
    ).result()) as ForgeOutcome;
    assert.equal(forged.status, 'registered');
    // A task that went well in production: the held-out set.
    const done = (await (
      await h.client.workflow.start('taskWorkflow', {
        taskQueue: h.cfg.FORGE_TASK_QUEUE,
        workflowId: `evolve-cycle-heldout-${Date.now()}`,
        args: [{ task: 'how many words are in "one two three four"?', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
      })
    ).result()) as TaskResult;
    assert.equal(done.status, 'completed', done.answer);
  });
  after(() => h?.close());

  it('a patch that makes the paraphrase reuse count_words passes replay (twice per case) and the held-out set: verified', async () => {
    const { outcome, row } = await evolve('(reuse it)');
    assert.equal(outcome.status, 'expired', outcome.reason);
    assert.equal(row.status, 'expired');
    assert.match(row.reason ?? '', /no consent within 1 s: the candidate expired and nothing changed/);
    assert.ok(
      (await h.client.workflow.getHandle(row.workflow_id).query(evolveProgressQuery)).history.some((x) => x.phase === 'verified'),
      'verified before it expired',
    );
    assert.match(row.diff ?? '', /\+- Requests are often worded differently from a tool description/);
    assert.ok(row.image && row.image_digest, 'the candidate image is recorded');
    const replay = row.replay!;
    assert.equal(replay.stage, 'full');
    assert.equal(replay.batchPassRate, 1);
    assert.equal(replay.heldOutRegressions, 0);
    assert.deepEqual(
      replay.cases.map((c) => [c.kind, c.pass]),
      [
        ['batch', true],
        ['batch', true],
        ['held-out', true],
      ],
    );
    // The production catalog is untouched: no word_tally, count_words still v1 only.
    const tools = await h.db.sql<{ name: string }[]>`select name from tools order by name`;
    assert.deepEqual(
      tools.map((t) => t.name),
      ['count_words'],
    );
  });

  it('a patch that fixes the batch but breaks a held-out task is refused, with the regression named', async () => {
    const { outcome, row } = await evolve('(breaks the held-out set)');
    assert.equal(outcome.status, 'refused');
    assert.match(outcome.reason, /1 held-out task\(s\) that passed in production failed with the candidate/);
    // … and which task, and why, in the reason the person reads first (the replay table has the same).
    assert.match(
      outcome.reason,
      / — "how many words are in "one two three four"\?": the task ended \w+; .*calls in production: count_words; in the replay: counter/,
    );
    const heldOut = row.replay!.cases.filter((c) => c.kind === 'held-out');
    assert.deepEqual(
      heldOut.map((c) => c.pass),
      [false],
    );
    assert.ok(
      row.replay!.cases.filter((c) => c.kind === 'batch').every((c) => c.pass),
      'the batch itself passed',
    );
  });
});

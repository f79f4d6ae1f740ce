import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type { EvolveOutcome } from '../../domain/evolve.ts';
import { dockerClient } from '../../infra/docker.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { evolveProgressQuery } from '../../workflows/definitions.ts';
import { type CrashRig, startCrashRig } from '../helpers/crash-rig.ts';
import { activityAttempts } from '../helpers/temporal.ts';
import { until } from '../helpers/wait.ts';
import { startWorkerProcess, stopWorkerProcess } from '../helpers/worker-process.ts';

// Issue 11, item 7: a worker SIGKILLed mid-evolve (while the coding agent writes the patch, and again
// once the patch has passed its checks, as the image is built and replayed) resumes to one candidate:
// one ledger row, one image (a retried build finds it), one verdict.

const AGENT = fs.readFileSync(path.resolve('harness/prompts/agent.ts'), 'utf8');
const RULE = '- Requests are often worded differently from a tool description: prefer an offered tool that does the job over forge_tool.';

let rig: CrashRig;

before(async () => {
  const coder: ScenarioInput = {
    name: 'a slow coding agent',
    rules: [
      {
        match: { purpose: 'evolve.patch' },
        responses: [
          {
            delay_ms: 4000,
            tool_use: {
              name: 'submit_patch',
              input: {
                rationale: 'weigh what an offered tool does, not its words',
                edits: [
                  {
                    path: 'harness/prompts/agent.ts',
                    content: AGENT.replace('- A task that needs no tool', `${RULE}\n- A task that needs no tool`),
                  },
                ],
              },
            },
          },
        ],
      },
    ],
  };
  rig = await startCrashRig('evolve-crash', [coder, JSON.parse(fs.readFileSync('scenarios/demo.json', 'utf8')) as ScenarioInput]);
});

after(() => rig?.close());

it('a worker SIGKILLed while the patch is written and again after its checks resumes to one candidate, one image, one verdict', async () => {
  const { db, model, client, cfg, env } = rig;
  let worker: ChildProcess = startWorkerProcess(env);
  try {
    // The evidence: a task a replay can judge without any tool (it needs none).
    const [row] = await db.sql<{ id: string }[]>`
      insert into failure_evidence (idempotency_key, workflow_id, source, failure_type, expected, happened, expectations, severity, trace)
      values ('evolve-crash:1', 'task-evolve-crash-1', 'feedback', 'output', 'an answer in words', 'no answer',
              ${db.sql.json([{ kind: 'completes' }] as never)}, 0.8,
              ${db.sql.json({ task: 'write a haiku about autumn leaves', status: 'failed', calls: [], forged: [] } as never)})
      returning id`;
    const workflowId = `evolve-crash-${Date.now()}`;
    const handle = await client.workflow.start('evolveWorkflow', {
      taskQueue: cfg.FORGE_TASK_QUEUE,
      workflowId,
      args: [
        {
          batchKey: 'crash:output',
          failureType: 'output',
          evidenceIds: [Number(row!.id)],
          sandboxQueue: cfg.FORGE_SANDBOX_QUEUE,
          maxAttempts: 1,
          // Verified, then nobody consents (part 2): it expires at once and nothing changes.
          consentTimeoutSeconds: 1,
        },
      ],
    });

    await until(
      'the coding agent is writing the patch',
      () => model.requests.some((r) => r.headers['x-forge-purpose'] === 'evolve.patch'),
      120_000,
    );
    await stopWorkerProcess(worker, 'SIGKILL');
    worker = startWorkerProcess(env);

    await until(
      'the patch passed its checks',
      async () => (await db.sql`select 1 from evolve_candidates where workflow_id = ${workflowId} and status = 'checked'`).length > 0,
      180_000,
    );
    await stopWorkerProcess(worker, 'SIGKILL');
    worker = startWorkerProcess(env);

    const outcome = (await handle.result()) as EvolveOutcome;
    assert.equal(outcome.status, 'expired', outcome.reason);
    assert.match(outcome.reason, /no consent within 1 s/);
    const phases = (await handle.query(evolveProgressQuery)).history.map((h) => h.phase);
    assert.ok(phases.includes('verified'), `verified before it expired (${phases.join(' → ')})`);
    assert.ok((await activityAttempts(client, workflowId, 'writeHarnessPatch')) >= 2, 'the killed patch step was retried');
    const rows = await db.sql<{ status: string; image: string; attempts: unknown[] }[]>`
      select status, image, attempts from evolve_candidates`;
    assert.equal(rows.length, 1, 'one candidate');
    assert.equal(rows[0]!.status, 'expired');
    assert.equal(rows[0]!.attempts.length, 1, 'one attempt recorded');
    const images = await dockerClient(cfg).listImages({ filters: { reference: [rows[0]!.image] } });
    assert.equal(images.length, 1, 'one image for the candidate’s tree');
  } finally {
    await stopWorkerProcess(worker, 'SIGTERM');
  }
});

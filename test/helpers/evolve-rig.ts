import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ensureControlContainer } from '../../app/control-worker.ts';
import type { Expectation } from '../../domain/evidence.ts';
import type { EvolveProgress } from '../../domain/evolve.ts';
import type { ForgeOutcome } from '../../domain/forge.ts';
import type { TaskResult } from '../../domain/task.ts';
import { dockerClient } from '../../infra/docker.ts';
import { workerDeployments } from '../../infra/worker-deployment.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { controlDeploymentName } from '../../services/config.ts';
import { controlWorkers } from '../../services/evolution/control-worker.ts';
import { evolveProgressQuery } from '../../workflows/definitions.ts';
import { type Harness, startHarness } from './harness.ts';
import { until } from './wait.ts';

/**
 * Self-evolution part 2's test production (issue 12): the sandbox worker in this process, the
 * control worker a container from this repository's tree, made current in its own worker
 * deployment, as `forge up` does it. The scripted model plays the coding agent: the good patch adds
 * a rule that makes a paraphrase reuse count_words; the bad patch sends every "how many words" task
 * to a tool that does not exist, which replay cannot see when production's past tasks are all
 * worded "count the words in", and a probe sees once such a task ran in production.
 */
const AGENT = fs.readFileSync(path.resolve('harness/prompts/agent.ts'), 'utf8');
const ANCHOR = '- A task that needs no tool';
export const GOOD_RULE =
  '- Requests are often worded differently from a tool description: prefer an offered tool that does the job over forge_tool.';
const BAD_RULE = '- Word counts go through the counter tool, whatever else is offered.';
const withRule = (rule: string) => AGENT.replace(ANCHOR, `${rule}\n${ANCHOR}`);
const PARAPHRASE = /tally the words of "([^"]+)"/i;

const patchOf = (rationale: string, rule: string) => ({
  tool_use: { name: 'submit_patch', input: { rationale, edits: [{ path: 'harness/prompts/agent.ts', content: withRule(rule) }] } },
});

/**
 * The coding agent and the agent under its patches. `badMarker` in the evidence picks the bad patch
 * (every "how many words" task to a tool nobody offered); anything else gets the good one.
 */
export function evolveScenario(badMarker: string): ScenarioInput {
  return {
    name: 'evolve',
    rules: [
      { match: { purpose: 'evolve.patch', user: badMarker }, responses: [patchOf('route word counts to one tool', BAD_RULE)] },
      {
        match: { purpose: 'evolve.patch' },
        responses: [
          patchOf(
            'The agent forged a duplicate because the request used other words than the tool description; tell it to weigh what an offered tool does.',
            GOOD_RULE,
          ),
        ],
      },
      {
        match: { purpose: 'task.turn', system: 'through the counter tool', first: '/how many words/i' },
        responses: [{ tool_use: { name: 'counter', input: { text: 'x' } } }],
      },
      {
        match: {
          purpose: 'task.turn',
          system: '/prefer an offered tool|through the counter tool/',
          first: `/${PARAPHRASE.source}/i`,
          tool: 'count_words',
          user: '/"words":(\\d+)/',
        },
        responses: [{ text: 'There are {{user.1}} words.' }],
      },
      {
        match: {
          purpose: 'task.turn',
          system: '/prefer an offered tool|through the counter tool/',
          first: `/${PARAPHRASE.source}/i`,
          tool: 'count_words',
        },
        responses: [{ tool_use: { name: 'count_words', input: { text: '{{first.1}}' } } }],
      },
    ],
  };
}

/** The bundled scenarios the rig's agent and forge cycles also need (after the evolve rules). */
export const bundled = ['scenarios/forge-word-count.json', 'scenarios/demo.json'].map(
  (f) => JSON.parse(fs.readFileSync(f, 'utf8')) as ScenarioInput,
);

export interface EvolveRig {
  h: Harness;
  deployment: string;
  install: { buildId: string; container: string };
  current(): Promise<string | null>;
  task(task: string): Promise<{ workflowId: string; result: TaskResult }>;
  /** starts an evolve cycle over one routing failure; `marker` picks the patch and names the batch */
  evolve(marker: string, extra?: { consentTimeoutSeconds?: number }): Promise<{ workflowId: string; evidenceId: number }>;
  awaitingConsent(workflowId: string): Promise<NonNullable<EvolveProgress['awaitingConsent']>>;
  /** which version is current, sampled every 250 ms until stopped: a swap or a rollback must never leave none */
  watchCurrent(): { seen: Set<string | null>; stop(): Promise<void> };
  close(): Promise<void>;
}

export async function startEvolveRig(env: Record<string, string> = {}): Promise<EvolveRig> {
  const h = await startHarness({
    role: 'sandbox',
    scenarios: [evolveScenario('(a probe will catch it)'), ...bundled],
    env: { FORGE_PROBE_WINDOW_S: '4', FORGE_PROBE_INTERVAL_S: '2', FORGE_PROBE_PASSES: '2', ...env },
  });
  const deployment = controlDeploymentName(h.cfg);
  const ops = workerDeployments(h.client.workflowService, h.cfg.TEMPORAL_NAMESPACE);
  const install = await ensureControlContainer(h.cfg);
  let n = 0;
  const rig: EvolveRig = {
    h,
    deployment,
    install,
    current: async () => (await ops.describe(deployment)).current,
    async task(task) {
      const workflowId = `rig-task-${++n}-${Date.now()}`;
      const handle = await h.client.workflow.start('taskWorkflow', {
        taskQueue: h.cfg.FORGE_TASK_QUEUE,
        workflowId,
        args: [{ task, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
      });
      return { workflowId, result: (await handle.result()) as TaskResult };
    },
    async evolve(marker, extra = {}) {
      const expectations: Expectation[] = [{ kind: 'uses-tool', tool: 'count_words' }, { kind: 'forges-nothing' }];
      const trace = {
        task: 'tally the words of "red green blue"',
        status: 'completed',
        answer: 'There are 3 words.',
        calls: [],
        forged: ['word_tally'],
      };
      const [row] = await h.db.sql<{ id: string }[]>`
        insert into failure_evidence (idempotency_key, workflow_id, source, failure_type, expected, happened, expectations, severity, trace)
        values (${`rig:${++n}`}, ${`task-rig-${n}`}, 'duplicate_forged', 'routing', ${`reuse count_words ${marker}`},
                'forged word_tally, a duplicate of count_words', ${h.db.sql.json(expectations as never)}, 0.8, ${h.db.sql.json(trace as never)})
        returning id`;
      const evidenceId = Number(row!.id);
      const workflowId = `evolve-rig-${n}-${Date.now()}`;
      await h.client.workflow.start('evolveWorkflow', {
        taskQueue: h.cfg.FORGE_TASK_QUEUE,
        workflowId,
        args: [
          {
            batchKey: `rig-${n}:routing`,
            failureType: 'routing',
            evidenceIds: [evidenceId],
            sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE,
            maxAttempts: 1,
            ...extra,
          },
        ],
      });
      return { workflowId, evidenceId };
    },
    async awaitingConsent(workflowId) {
      let waiting: EvolveProgress['awaitingConsent'];
      await until(
        `${workflowId} waits for consent`,
        async () => {
          const p = await h.client.workflow
            .getHandle(workflowId)
            .query(evolveProgressQuery)
            .catch(() => undefined);
          if (p && ['refused', 'failed'].includes(p.phase))
            throw new Error(`${workflowId} ended ${p.phase}: ${JSON.stringify(p.history.at(-1))}`);
          waiting = p?.awaitingConsent;
          return waiting !== undefined;
        },
        600_000,
        500,
      );
      return waiting!;
    },
    watchCurrent() {
      const seen = new Set<string | null>();
      let watching = true;
      const loop = (async () => {
        while (watching) {
          seen.add(await rig.current().catch(() => 'unreachable'));
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      return {
        seen,
        async stop() {
          watching = false;
          await loop;
        },
      };
    },
    async close() {
      // The control containers come back by themselves (restart policy): they go with the rig.
      const workers = controlWorkers(dockerClient(h.cfg), h.cfg.home);
      for (const w of await workers.list(deployment)) await workers.remove(deployment, w.buildId);
      await h.close();
    },
  };
  // Production's past: count_words forged, and a task worded "count the words in" (the held-out set).
  const forged = (await (
    await h.client.workflow.start('forgeWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId: `rig-forge-${Date.now()}`,
      args: [
        { need: 'count the words in a text: input text, output words, characters and lines', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE },
      ],
    })
  ).result()) as ForgeOutcome;
  assert.equal(forged.status, 'registered');
  const done = await rig.task('count the words in "one two three four"');
  assert.equal(done.result.status, 'completed', done.result.answer);
  return rig;
}

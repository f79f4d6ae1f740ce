import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { NativeConnection } from '@temporalio/worker';
import type Docker from 'dockerode';
import type { ForgeConfig } from '../../domain/config.ts';
import { acceptReplay, REPLAY_POLICY, type ReplayReport } from '../../domain/evolve.ts';
import { dockerClient } from '../../infra/docker.ts';
import { migrate } from '../../infra/migrate.ts';
import { servePglite } from '../../infra/pglite-server.ts';
import { freePort } from '../../infra/processes.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { type ScriptedModel, startScriptedModel } from '../../scripted-model/server.ts';
import { createRegistry } from '../../services/catalog/registry.ts';
import { createKillSwitch, freezeForge } from '../../services/control/kill-switch.ts';
import { connect, type Sql } from '../../services/db.ts';
import { LABEL_TREE } from '../../services/evolution/image.ts';
import { LABEL_REPLAY, replayNames } from '../../services/evolution/replay.ts';
import { treeHashOf } from '../../services/evolution/workspace.ts';
import { repoRoot } from '../../services/sandbox/bundle.ts';
import { LABEL_OWNER, OWNER, sandboxDeployment } from '../../services/sandbox/container.ts';
import { createSandbox, type Sandbox } from '../../services/sandbox/index.ts';
import { freshDatabase, testConfig } from '../helpers/env.ts';
import { evolveSandboxActivities } from '../helpers/evolve-activities.ts';

// Self-evolution's candidate image and replay verification (issue 11, items 4 and 5), on real
// Docker, Temporal and Postgres with the scripted model. "Production" is a database and a tools
// folder of this file's own: count_words (a read) and create_note (a write), one failure-evidence
// row (a routing miss: the agent should have counted with count_words) and past tasks. A candidate
// is a copy of this repository whose harness differs: the good one adds a sentence to the agent's
// instructions; the bad one renames the task message's heading, so the scripted model no longer
// recognises the task (rule "count the words", which reads "Task:") and answers without the tool.

const BATCH_TASK = 'how many words are in "a rose is a rose is a rose"?';
const NOTE_TASK = 'make a note titled groceries with milk and eggs';
const PLAIN_TASK = 'what is the capital of France?';

const scenario: ScenarioInput = {
  name: 'evolve-replay',
  rules: [
    {
      name: 'answer "that phrase" from the session',
      match: { purpose: 'task.turn', first: 'that phrase', document: '/"words":(\\d+)/' },
      responses: [{ text: 'That phrase has {{document.1}} words, as count_words said earlier.' }],
    },
    {
      name: "answer from count_words' result",
      match: { purpose: 'task.turn', user: '/"words":(\\d+)/' },
      responses: [{ text: 'There are {{user.1}} words, as counted by count_words.' }],
    },
    {
      name: "answer from create_note's dry run",
      match: { purpose: 'task.turn', user: '/"dryRun":true/' },
      responses: [{ text: 'The note is taken.' }],
    },
    {
      name: 'count the words of a task headed "Task:"',
      match: { purpose: 'task.turn', tool: 'count_words', first: '/^Task:\\n[\\s\\S]*how many words are in "([^"]*)"/' },
      responses: [{ tool_use: { name: 'count_words', input: { text: '{{first.1}}' } } }],
    },
    {
      name: 'take a note',
      match: { purpose: 'task.turn', tool: 'create_note', first: '/note titled (\\S+) with (.+)$/' },
      responses: [{ tool_use: { name: 'create_note', input: { title: '{{first.1}}', body: '{{first.2}}' } } }],
    },
    { name: 'anything else: an answer in words', match: { purpose: 'task.turn' }, responses: [{ text: 'Paris, as far as I know.' }] },
  ],
};

const countWords = `import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

export const manifest = {
  name: 'count_words',
  description: 'Counts the words in a text.',
  sideEffect: 'read',
  destructive: false,
  permissions: { network: [], env: [] },
  input: z.object({ text: z.string() }),
  output: z.object({ words: z.number().int() }),
};

export async function run(input: { text: string }, _ctx: ToolContext) {
  return { words: input.text.split(/\\s+/).filter(Boolean).length };
}
`;
const createNote = `import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

export const manifest = {
  name: 'create_note',
  description: 'Creates a note with a title and a body in the notes service.',
  sideEffect: 'write',
  destructive: false,
  permissions: { network: [], env: [] },
  input: z.object({ title: z.string(), body: z.string() }),
  output: z.object({ id: z.string() }),
};

export async function run(input: { title: string; body: string }, _ctx: ToolContext) {
  throw new Error('a replay must never run a write: ' + input.title);
}
`;

/** A copy of this repository as the evolve cycle's checks leave it (services/evolution/workspace.ts), with one harness file changed. */
async function candidateTree(dir: string, edit: (agentPrompt: string) => string): Promise<string> {
  const skip = new Set(['node_modules', '.git', 'build', '.cache', 'coverage']);
  await fs.cp(repoRoot, dir, { recursive: true, filter: (src) => !skip.has(path.basename(src)) });
  await fs.symlink(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const file = path.join(dir, 'harness', 'prompts', 'agent.ts');
  const before = await fs.readFile(file, 'utf8');
  const after = edit(before);
  assert.notEqual(after, before, 'the candidate changes the harness');
  await fs.writeFile(file, after);
  return (await treeHashOf(dir)).hash;
}

interface Production {
  sql: Sql;
  url: string;
  home: string;
  evidenceId: number;
  activities: ReturnType<typeof evolveSandboxActivities>;
  /** every table a replay might touch (rows), and the tools folder's files */
  state(): Promise<unknown>;
}

describe('evolve: candidate image and replay in throwaway containers', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let pglite: { url: string; stop(): Promise<void> } | undefined;
  let pgliteSql: Sql | undefined;
  let model: ScriptedModel;
  let sandbox: Sandbox;
  let connection: NativeConnection;
  let cfg: ForgeConfig;
  let prod: Production;
  const homes: string[] = [];
  const docker = dockerClient({});
  const nonce = randomBytes(4).toString('hex');
  const good = { id: `evolve-test-good-${nonce}`, hash: '' };
  const bad = { id: `evolve-test-bad-${nonce}`, hash: '' };
  const images: string[] = [];

  /**
   * A production of this file's own: its database (a Postgres database, or an embedded PGlite
   * server), a tools folder with count_words and create_note, one failure-evidence row and past tasks,
   * and the sandbox queue's evolve activities wired as workers/main.ts wires them.
   */
  async function production(sql: Sql, url: string): Promise<Production> {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'forge-evolve-replay-'));
    homes.push(home);
    const toolsDir = path.join(home, 'tools');
    const activities = evolveSandboxActivities({ cfg, sql, databaseUrl: url, home, toolsDir, docker, sandbox, connection });
    const registry = createRegistry({ sql, root: toolsDir });
    for (const [name, source, sideEffect, input] of [
      ['count_words', countWords, 'read', { text: { type: 'string' } }],
      ['create_note', createNote, 'write', { title: { type: 'string' }, body: { type: 'string' } }],
    ] as const) {
      await registry.registerVersion({
        name,
        source,
        tests: '',
        manifest: {
          description:
            name === 'count_words' ? 'Counts the words in a text.' : 'Creates a note with a title and a body in the notes service.',
          sideEffect,
          destructive: false,
          permissions: { network: [], env: [] },
          inputSchema: { type: 'object', properties: input, required: Object.keys(input) },
          outputSchema: { type: 'object' },
        },
        createdBy: 'human',
        idempotencyKey: `evolve-replay:${name}`,
      });
    }
    const [row] = await sql<{ id: string }[]>`
      insert into failure_evidence (idempotency_key, workflow_id, source, failure_type, expected, happened, expectations, severity, trace)
      values ('task-routing-miss:feedback:1', 'task-routing-miss', 'feedback', 'routing', 'count with count_words',
              'the agent answered from memory', ${sql.json([
                { kind: 'uses-tool', tool: 'count_words' },
                { kind: 'answer-contains', text: '8 words' },
              ])},
              0.8, ${sql.json({ task: BATCH_TASK, status: 'completed', answer: 'About seven.', calls: [], forged: [] })})
      returning id`;
    // Past tasks: two that completed (the held-out set), the batch's own task (never held out), one that failed.
    const done = (task: string) =>
      sql.json({ task, status: 'completed', answer: 'done', calls: [], turns: 1, tokens: { input: 1, output: 1 }, forged: [] });
    await sql`insert into tasks (workflow_id, task, status, result, updated_at) values
      ('task-note', ${NOTE_TASK}, 'completed', ${done(NOTE_TASK)}, now() - interval '3 minutes'),
      ('task-plain', ${PLAIN_TASK}, 'completed', ${done(PLAIN_TASK)}, now() - interval '2 minutes'),
      ('task-routing-miss', ${BATCH_TASK}, 'completed', ${done(BATCH_TASK)}, now() - interval '1 minute'),
      ('task-failed', 'fetch the weather in Oslo', 'failed', null, now())`;
    const tables = [
      'tools',
      'tool_versions',
      'tool_test_cases',
      'invocations',
      'tasks',
      'task_steps',
      'approvals',
      'llm_calls',
      'audit_log',
      'failure_evidence',
      'system_state',
      'sessions',
      'session_tasks',
    ];
    return {
      sql,
      url,
      home,
      evidenceId: Number(row!.id),
      activities,
      async state() {
        const rows: Record<string, unknown> = {};
        for (const t of tables) rows[t] = await sql.unsafe(`select * from ${t} order by 1, 2`);
        const files = (await fs.readdir(toolsDir, { recursive: true })).sort();
        return { rows, files };
      },
    };
  }

  /** What a replay leaves behind: its container, database and role, folders, sandbox containers and networks. */
  const leftovers = async (p: Production, candidateId: string) => {
    const names = replayNames(candidateId, p.home);
    const containers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_REPLAY}=${candidateId}`] } });
    const sandboxes = await docker.listContainers({ all: true, filters: { label: [`${LABEL_OWNER}=${OWNER}`] } });
    const networks = await docker.listNetworks({ filters: { label: [`${LABEL_OWNER}=${OWNER}`] } });
    const [database] = await db.sql<{ n: number }[]>`select count(*)::int as n from pg_database where datname = ${names.database}`;
    const [role] = await db.sql<{ n: number }[]>`select count(*)::int as n from pg_roles where rolname = ${names.database}`;
    const folder = await fs.stat(names.dir).then(
      () => true,
      () => false,
    );
    return {
      containers: containers.length,
      sandboxes: sandboxes.length,
      networks: networks.length,
      databases: database!.n,
      roles: role!.n,
      folder,
    };
  };
  const nothingLeft = { containers: 0, sandboxes: 0, networks: 0, databases: 0, roles: 0, folder: false };

  const replay = (p: Production, candidateId: string, image: string) =>
    p.activities.replayCandidate({ candidateId, image, evidenceIds: [p.evidenceId], runsPerCase: 2, heldOut: 2, sample: 1 });

  const timings = (r: ReplayReport) =>
    r.cases.map((c) => `${c.kind} ${c.kind === 'batch' ? `evidence ${c.case}` : c.task} run ${c.run}: ${c.status} ${c.durationMs} ms`);

  /** The good candidate's report: the batch twice, then both held-out tasks, every case passing. */
  const assertGoodReport = (report: ReplayReport, evidenceId: number) => {
    assert.equal(report.stage, 'full');
    assert.deepEqual(
      report.cases.map((c) => [c.kind, c.case, c.run, c.pass, c.status, c.reasons]),
      [
        ['batch', String(evidenceId), 1, true, 'completed', []],
        ['batch', String(evidenceId), 2, true, 'completed', []],
        ['held-out', 'task-plain', 1, true, 'completed', []],
        ['held-out', 'task-note', 1, true, 'completed', []],
      ],
    );
    assert.deepEqual([report.batchPassRate, report.heldOutPassRate, report.heldOutRegressions], [1, 1, 0]);
    assert.ok(report.tokens.input > 0 && report.tokens.output > 0, JSON.stringify(report.tokens));
    assert.equal(acceptReplay(report, REPLAY_POLICY.passThreshold).accepted, true);
  };

  before(async () => {
    db = await freshDatabase();
    model = await startScriptedModel({ scenarios: [scenario] });
    cfg = testConfig({ DATABASE_URL: db.url, ANTHROPIC_BASE_URL: model.url, FORGE_POOL_SIZE: '0' });
    sandbox = createSandbox({ docker, image: cfg.FORGE_SANDBOX_IMAGE, poolSize: 0 });
    connection = await NativeConnection.connect({ address: cfg.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
    prod = await production(db.sql, db.url);
    good.hash = await candidateTree(path.join(prod.home, 'evolve', good.id, 'tree'), (s) =>
      s.replace('How to work:', `How to work (revision ${nonce}):`),
    );
    bad.hash = await candidateTree(path.join(prod.home, 'evolve', bad.id, 'tree'), (s) =>
      s.replace(/task: \(task\) => `Task:/, `task: (task) => \`Job ${nonce}:`),
    );
  });

  after(async () => {
    for (const image of images)
      await docker
        .getImage(image)
        .remove({ force: true })
        .catch(() => {});
    await sandbox?.close();
    await connection?.close();
    await model?.close();
    await pgliteSql?.end({ timeout: 2 });
    await pglite?.stop();
    await db?.drop();
    for (const home of homes) await fs.rm(home, { recursive: true, force: true });
  });

  /** What a command prints in a throwaway container of an image. */
  async function outputOf(image: string, cmd: string[]): Promise<string> {
    let text = '';
    const out = new PassThrough().on('data', (d: Buffer) => (text += d.toString()));
    const [, container] = (await docker.run(image, cmd, out, { HostConfig: { NetworkMode: 'none' } })) as [unknown, Docker.Container];
    await container.remove({ force: true });
    return text.trim();
  }

  it('builds the worker image from the patched tree, labelled with its hash; the same tree again is a no-op', async (t) => {
    const t0 = performance.now();
    const first = await prod.activities.buildCandidateImage({ candidateId: good.id, treeHash: good.hash });
    const firstMs = Math.round(performance.now() - t0);
    images.push(first.image);
    assert.equal(first.reused, false);
    assert.equal(first.image, `forge-worker:${good.hash}`);
    assert.match(first.digest, /^sha256:[a-f0-9]{64}$/);
    const info = await docker.getImage(first.image).inspect();
    assert.equal(info.Config.Labels[LABEL_TREE], good.hash);
    assert.equal(info.Config.User, '10001:10001');
    assert.deepEqual(info.Config.Cmd, ['/usr/bin/node', '--import', 'tsx', 'workers/main.ts']);
    // It ships the tree's workflow bundle, named by the tree's sources: its containers start without bundling.
    const shipped = await outputOf(first.image, [
      '/usr/bin/node',
      '-e',
      "console.log(require('fs').readdirSync('/app/.workflow-bundle').join(' '))",
    ]);
    assert.match(shipped, /^workflow-bundle-[0-9a-f]{16}\.json$/);

    const t1 = performance.now();
    const again = await prod.activities.buildCandidateImage({ candidateId: good.id, treeHash: good.hash });
    const reusedMs = Math.round(performance.now() - t1);
    assert.deepEqual(again, { ...first, reused: true });

    const t2 = performance.now();
    const other = await prod.activities.buildCandidateImage({ candidateId: bad.id, treeHash: bad.hash });
    const thinMs = Math.round(performance.now() - t2);
    images.push(other.image);
    assert.equal(other.reused, false);
    assert.notEqual(other.digest, first.digest);
    // Both share the base: only the tree's layer differs.
    const otherInfo = await docker.getImage(other.image).inspect();
    assert.equal(info.RootFS.Layers?.[0], otherInfo.RootFS.Layers?.[0]);
    assert.notEqual(info.RootFS.Layers?.at(-1), otherInfo.RootFS.Layers?.at(-1));
    t.diagnostic(`build: first ${firstMs} ms, the same tree again ${reusedMs} ms, another tree on the same base ${thinMs} ms`);
  });

  it('refuses to label an image with a hash its tree no longer has', async () => {
    await assert.rejects(prod.activities.buildCandidateImage({ candidateId: good.id, treeHash: 'f'.repeat(64) }), (err: Error) => {
      assert.match(err.message, /hashes to [a-f0-9]{12}, not ffffffffffff: it changed after its checks/);
      return true;
    });
  });

  it('replays a good candidate: the batch twice, then the held-out set, judged here; nothing left behind, production untouched', async (t) => {
    const before = await prod.state();
    const report = await replay(prod, good.id, `forge-worker:${good.hash}`);
    t.diagnostic(`good candidate: ${report.durationMs} ms in all; ${timings(report).join('; ')}`);
    assertGoodReport(report, prod.evidenceId);
    // The write was approved by the replay driver and answered as a dry run, never run (create_note throws if it runs).
    assert.ok(
      model.requests.some((r) => JSON.stringify(r.body).includes('\\"dryRun\\":true')),
      'the model read the dry run of create_note',
    );
    // Every replayed turn came from the candidate: its instructions carry the patch's sentence.
    const turns = model.requests.filter((r) => r.headers['x-forge-purpose'] === 'task.turn');
    assert.ok(turns.length >= 6 && turns.every((r) => JSON.stringify(r.body).includes(`How to work (revision ${nonce}):`)));
    assert.deepEqual(await leftovers(prod, good.id), nothingLeft);
    assert.deepEqual(await prod.state(), before);
  });

  it('replays a bad candidate: the sample fails under the threshold, so the rest never runs', async (t) => {
    const before = await prod.state();
    const report = await replay(prod, bad.id, `forge-worker:${bad.hash}`);
    t.diagnostic(`bad candidate: ${report.durationMs} ms in all; ${timings(report).join('; ')}`);
    assert.equal(report.stage, 'sample');
    assert.deepEqual(
      report.cases.map((c) => [c.kind, c.run, c.pass, c.status]),
      [
        ['batch', 1, false, 'completed'],
        ['batch', 2, false, 'completed'],
      ],
    );
    assert.deepEqual(report.cases[0]!.reasons, [
      'count_words was not called successfully (called: nothing)',
      'the answer does not contain "8 words"',
    ]);
    assert.equal(report.batchPassRate, 0);
    assert.deepEqual(acceptReplay(report, REPLAY_POLICY.passThreshold), {
      accepted: false,
      reason: 'the batch passed 0 % of its replays, under the 80 % threshold',
    });
    assert.deepEqual(await leftovers(prod, bad.id), nothingLeft);
    assert.deepEqual(await prod.state(), before);
  });

  it("replays evidence under its task's bounds and in its session: a task a bound stopped still stops, a session's earlier exchanges are there", async (t) => {
    const sql = prod.sql;
    const session = `groceries-${nonce}`;
    const bounds = { maxTurns: 1, maxToolCalls: 16, maxTokens: 300_000 };
    const counted = {
      turn: 1,
      id: 'toolu_1',
      tool: 'count_words',
      version: 1,
      status: 'succeeded',
      input: { text: 'a rose is a rose is a rose' },
      output: { words: 8 },
    };
    // A session: its first task counted a phrase; its second asked about "that phrase" and got a wrong answer.
    const earlier = {
      task: BATCH_TASK,
      status: 'completed',
      answer: 'There are 8 words, as counted by count_words.',
      calls: [counted],
      turns: 2,
      tokens: { input: 1, output: 1 },
      forged: [],
    };
    await sql`insert into tasks (workflow_id, task, status, result) values
      ('task-session-1', ${BATCH_TASK}, 'completed', ${sql.json(earlier)}),
      ('task-session-2', 'how many words did that phrase have?', 'completed', null)`;
    await sql`insert into sessions (id, title) values (${session}, 'a rose')`;
    await sql`insert into session_tasks (workflow_id, session_id, position) values ('task-session-1', ${session}, 1), ('task-session-2', ${session}, 2)`;
    const evidence = async (workflowId: string, expectations: unknown[], trace: Record<string, unknown>) => {
      const [row] = await sql<{ id: string }[]>`
        insert into failure_evidence (idempotency_key, workflow_id, source, failure_type, expected, happened, expectations, severity, trace)
        values (${`${workflowId}:test`}, ${workflowId}, 'task_failed', 'state', 'an answer', 'none', ${sql.json(expectations as never)}, 0.8,
                ${sql.json({ calls: [], forged: [], ...trace } as never)})
        returning id`;
      return Number(row!.id);
    };
    // `forge run '…' --max-turns 1`: the count takes two turns (the call, then the answer), so the bound stopped it.
    const stopped = await evidence('task-bounded', [{ kind: 'completes' }], {
      task: BATCH_TASK,
      status: 'stopped',
      answer: 'stopped: no answer after 1 turns, the bound per task (raise limits.maxTurns)',
      turns: 1,
      limits: bounds,
    });
    const inSession = await evidence('task-session-2', [{ kind: 'answer-contains', text: '8 words' }], {
      task: 'how many words did that phrase have?',
      sessionId: session,
      status: 'completed',
      answer: 'Paris, as far as I know.',
    });
    // Recorded before Forge kept the bounds: a bound stopped it, but which one is unknown.
    const unknownBounds = await evidence('task-bounded-old', [{ kind: 'completes' }], { task: BATCH_TASK, status: 'stopped' });
    try {
      const before = await prod.state();
      const report = await prod.activities.replayCandidate({
        candidateId: good.id,
        image: `forge-worker:${good.hash}`,
        evidenceIds: [stopped, inSession, unknownBounds],
        runsPerCase: 1,
        heldOut: 0,
        sample: 3,
      });
      t.diagnostic(`bounds and session: ${report.durationMs} ms in all; ${timings(report).join('; ')}`);
      assert.deepEqual(
        report.cases.map((c) => [c.case, c.pass, c.status, c.reasons]),
        [
          // Under its own bound the count stops again: the candidate did not fix it, whatever the default bounds would allow.
          [String(stopped), false, 'stopped', ['the task ended stopped']],
          [String(inSession), true, 'completed', []],
          [
            String(unknownBounds),
            false,
            'not-replayable',
            [
              'a bound stopped the task, and the evidence does not say which bounds it ran under (it was recorded before Forge kept them): under the default bounds a replay would prove nothing',
            ],
          ],
        ],
      );
      // The session's replay saw the earlier exchange, in a session of the run's own.
      const turn = model.requests.find(
        (r) => r.headers['x-forge-purpose'] === 'task.turn' && JSON.stringify(r.body).includes('how many words did that phrase have?'),
      );
      const body = JSON.stringify(turn?.body);
      assert.ok(body.includes(`Session ${session}.e${inSession}.r1:`), body);
      assert.ok(body.includes('\\"words\\":8') && body.includes('This task is #2.'), body);
      assert.deepEqual(await leftovers(prod, good.id), nothingLeft);
      assert.deepEqual(await prod.state(), before);
    } finally {
      await sql`delete from failure_evidence where id in ${sql([stopped, inSession, unknownBounds])}`;
    }
  });

  it('the candidate reaches its database as a role of its own; forge freeze mid-replay kills it, and the replay removes everything', async () => {
    const killSwitch = createKillSwitch(prod.sql);
    const names = replayNames(good.id, prod.home);
    const running = replay(prod, good.id, `forge-worker:${good.hash}`);
    // The freeze below may end the replay before assert.rejects listens: not an unhandled rejection.
    running.catch(() => {});
    // Once the candidate's worker has connected (it names its sessions after its container): it
    // reaches its scratch database as a role of its own, never with production's credentials.
    let sessions: { usename: string; datname: string }[] = [];
    for (let i = 0; i < 300 && !sessions.length; i++) {
      sessions = await db.sql`select usename, datname from pg_stat_activity where application_name = ${names.container}`;
      if (!sessions.length) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(sessions.length, 'the candidate connected to its database');
    assert.deepEqual([...new Set(sessions.map((s) => `${s.usename}@${s.datname}`))], [`${names.database}@${names.database}`]);
    // forge freeze: refuse, then kill this deployment's sandboxes, the candidate's container among them.
    const { killedSandboxes } = await freezeForge({ sql: prod.sql, docker, deployment: sandboxDeployment(), by: 'tester' });
    assert.ok(killedSandboxes >= 1);
    try {
      await assert.rejects(running, (err: Error & { type?: string }) => {
        assert.equal(err.type, 'ForgeFrozen');
        return true;
      });
    } finally {
      await killSwitch.thaw('tester');
    }
    assert.deepEqual(await leftovers(prod, good.id), nothingLeft);
  });

  it('on the embedded PGlite (one database), the scratch catalog gets an embedded server of its own', async (t) => {
    pglite = await servePglite('memory://', await freePort());
    pgliteSql = connect(pglite.url, { max: 2 });
    await migrate(pgliteSql);
    const embedded = await production(pgliteSql, pglite.url);
    const before = await embedded.state();
    const report = await replay(embedded, good.id, `forge-worker:${good.hash}`);
    t.diagnostic(`good candidate, production on PGlite: ${report.durationMs} ms in all; ${timings(report).join('; ')}`);
    assertGoodReport(report, embedded.evidenceId);
    assert.deepEqual(await leftovers(embedded, good.id), nothingLeft);
    assert.deepEqual(await embedded.state(), before);
    const [databases] = await pgliteSql<{ n: number }[]>`select count(*)::int as n from pg_database where datname like 'forge_replay_%'`;
    assert.equal(databases!.n, 0);
  });
});

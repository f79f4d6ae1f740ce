import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NativeConnection } from '@temporalio/worker';
import type { ForgeConfig } from '../../domain/config.ts';
import { acceptReplay, REPLAY_POLICY } from '../../domain/evolve.ts';
import { dockerClient } from '../../infra/docker.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { type ScriptedModel, startScriptedModel } from '../../scripted-model/server.ts';
import { createRegistry } from '../../services/catalog/registry.ts';
import { treeHashOf } from '../../services/evolution/workspace.ts';
import { repoRoot } from '../../services/sandbox/bundle.ts';
import { createSandbox, type Sandbox } from '../../services/sandbox/index.ts';
import { freshDatabase, testConfig } from '../helpers/env.ts';
import { evolveSandboxActivities } from '../helpers/evolve-activities.ts';

// The chaos run's refused evolve cycles (test/chaos/round.ts), reproduced without the chaos: its
// held-out set is the one task of the round that completed, "make a note titled stats with the word
// count of …", which counted with count_words (a read) and wrote the note with create_note (a write,
// approved by a person). Its agent is the bundled scenarios/demo.json, which answers from the note's
// id ("Created the note note_…") — the id create_note returned in production. A replay dry-runs
// every write; answered with a note that it was not run, the agent of the original run had nothing to
// answer from, counted again, wrote again, … until its turn bound stopped the task, and the candidate
// was refused for a "held-out regression" that the current harness would have had as well. A write
// the held-out task made in production, made again with the same input, is now answered with the
// output it had then (still never run); any other write stays a dry run, and when the task then
// fails, its reasons say plainly that it could not be replayed faithfully (`forge evolve show`).

const NOTE_TASK = 'make a note titled stats with the word count of "a b c d"';
const NOTE_ID = 'note_5f3a9c1e';
const OTHER_NOTE_TASK = 'make a note titled tally with the word count of "x y z"';
const BATCH_TASK = 'write a haiku about autumn leaves';

const countWords = `import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

export const manifest = {
  name: 'count_words',
  description: 'count the words in a text: input text, output words, characters and lines',
  sideEffect: 'read',
  destructive: false,
  permissions: { network: [], env: [] },
  input: z.object({ text: z.string() }),
  output: z.object({ words: z.number().int(), characters: z.number().int(), lines: z.number().int() }),
};

export async function run(input: { text: string }, _ctx: ToolContext) {
  return { words: input.text.split(/\\s+/).filter(Boolean).length, characters: input.text.length, lines: input.text.split('\\n').length };
}
`;
const createNote = `import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

export const manifest = {
  name: 'create_note',
  description: 'create a note with a title, a body and tags: output the note id',
  sideEffect: 'write',
  destructive: false,
  permissions: { network: [], env: [] },
  input: z.object({ title: z.string(), body: z.string(), tags: z.array(z.string()) }),
  output: z.object({ id: z.string(), title: z.string(), tags: z.array(z.string()), bytes: z.number().int() }),
};

export async function run(input: { title: string; body: string }, _ctx: ToolContext) {
  throw new Error('a replay must never run a write: ' + input.title);
}
`;

/** The chaos round's coding agent's patch: one more line in the agent's instructions. */
const RULE = '- Requests are often worded differently from a tool description: prefer an offered tool that does the job over forge_tool.';

describe("evolve replay: a held-out task that wrote in production (the chaos round's note)", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let model: ScriptedModel;
  let sandbox: Sandbox;
  let connection: NativeConnection;
  let cfg: ForgeConfig;
  let home: string;
  let image = '';
  const docker = dockerClient({});
  const candidateId = `evolve-writes-${randomBytes(4).toString('hex')}`;

  before(async () => {
    db = await freshDatabase();
    const demo = JSON.parse(await fs.readFile(path.join(repoRoot, 'scenarios/demo.json'), 'utf8')) as ScenarioInput;
    model = await startScriptedModel({ scenarios: [demo] });
    cfg = testConfig({ DATABASE_URL: db.url, ANTHROPIC_BASE_URL: model.url, FORGE_POOL_SIZE: '0' });
    sandbox = createSandbox({ docker, image: cfg.FORGE_SANDBOX_IMAGE, poolSize: 0 });
    connection = await NativeConnection.connect({ address: cfg.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'forge-evolve-writes-'));
  });

  after(async () => {
    if (image)
      await docker
        .getImage(image)
        .remove({ force: true })
        .catch(() => {});
    await sandbox?.close();
    await connection?.close();
    await model?.close();
    await db?.drop();
    if (home) await fs.rm(home, { recursive: true, force: true });
  });

  it('a held-out write made again is answered as production answered it (the task completes); one never made is a dry run, said plainly', async (t) => {
    const toolsDir = path.join(home, 'tools');
    const registry = createRegistry({ sql: db.sql, root: toolsDir });
    for (const [name, source, sideEffect, description] of [
      ['count_words', countWords, 'read', 'count the words in a text: input text, output words, characters and lines'],
      ['create_note', createNote, 'write', 'create a note with a title, a body and tags: output the note id'],
    ] as const) {
      const properties =
        name === 'count_words'
          ? { text: { type: 'string' } }
          : { title: { type: 'string' }, body: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } };
      await registry.registerVersion({
        name,
        source,
        tests: '',
        manifest: {
          description,
          sideEffect,
          destructive: false,
          permissions: { network: [], env: [] },
          inputSchema: { type: 'object', properties, required: Object.keys(properties) },
          outputSchema: { type: 'object' },
        },
        createdBy: 'human',
        idempotencyKey: `evolve-writes:${name}`,
      });
    }
    // The batch: the chaos round's own evidence (an answer in words), which any harness completes.
    const [row] = await db.sql<{ id: string }[]>`
      insert into failure_evidence (idempotency_key, workflow_id, source, failure_type, expected, happened, expectations, severity, trace)
      values ('chaos:writes', 'task-chaos-writes', 'feedback', 'output', 'an answer in words', 'no answer',
              ${db.sql.json([{ kind: 'completes' }])}, 0.8,
              ${db.sql.json({ task: BATCH_TASK, status: 'failed', calls: [], forged: [] })})
      returning id`;
    // Held-out tasks as the chaos round leaves them: their calls, the note's real output among them.
    // The round's own note task, whose write the replay's agent makes again with the same input; and
    // one whose note production's agent worded otherwise than this agent does (as a real model may),
    // so no output of production's fits the replay's call.
    const noteTask = async (workflowId: string, task: string, text: string, body: string, id: string, ago: string) => {
      const words = text.split(' ').length;
      const calls = [
        { turn: 1, id: 'c1', tool: 'forge_tool', input: { name: 'count_words' }, status: 'succeeded', output: 'Forged count_words v1' },
        {
          turn: 2,
          id: 'c2',
          tool: 'count_words',
          version: 1,
          input: { text },
          status: 'succeeded',
          output: { words, characters: text.length, lines: 1 },
        },
        { turn: 2, id: 'c3', tool: 'forge_tool', input: { name: 'create_note' }, status: 'succeeded', output: 'Forged create_note v1' },
        {
          turn: 3,
          id: 'c4',
          tool: 'create_note',
          version: 1,
          input: { title: task.split(' ')[4], body, tags: [] },
          status: 'succeeded',
          output: { id, title: task.split(' ')[4], tags: [], bytes: body.length },
        },
      ];
      const result = {
        task,
        status: 'completed',
        answer: `Created the note ${id}.`,
        calls,
        turns: 4,
        tokens: { input: 1, output: 1 },
        forged: [],
      };
      await db.sql`insert into tasks (workflow_id, task, status, result, updated_at)
                   values (${workflowId}, ${task}, 'completed', ${db.sql.json(result as never)}, now() - ${ago}::interval)`;
    };
    await noteTask('chaos-task-note', NOTE_TASK, 'a b c d', '4 words in "a b c d"', NOTE_ID, '1 minute');
    await noteTask('task-note-worded', OTHER_NOTE_TASK, 'x y z', 'three words: x y z', 'note_77aa0b3d', '2 minutes');

    const activities = evolveSandboxActivities({ cfg, sql: db.sql, databaseUrl: db.url, home, toolsDir, docker, sandbox, connection });

    // The candidate: this repository with the chaos coder's line added to the agent's instructions.
    const tree = path.join(home, 'evolve', candidateId, 'tree');
    const skip = new Set(['node_modules', '.git', 'build', '.cache', 'coverage']);
    await fs.cp(repoRoot, tree, { recursive: true, filter: (src) => !skip.has(path.basename(src)) });
    await fs.symlink(path.join(repoRoot, 'node_modules'), path.join(tree, 'node_modules'), 'dir');
    const agentFile = path.join(tree, 'harness', 'prompts', 'agent.ts');
    const agent = await fs.readFile(agentFile, 'utf8');
    // The candidate's id in a comment makes its tree, and so its image tag, this test's alone: the
    // evolve rig's good patch adds the same line to the same tree, and this test removes its image
    // at the end (while evolve-deploy, running beside it, was about to start that very tag: a 404).
    await fs.writeFile(
      agentFile,
      `${agent.replace('- A task that needs no tool', `${RULE}\n- A task that needs no tool`)}\n// ${candidateId}\n`,
    );
    const built = await activities.buildCandidateImage({ candidateId, treeHash: (await treeHashOf(tree)).hash });
    image = built.image;

    const report = await activities.replayCandidate({
      candidateId,
      image: built.image,
      evidenceIds: [Number(row!.id)],
      runsPerCase: 1,
      heldOut: REPLAY_POLICY.heldOut,
      sample: 1,
    });
    const table = report.cases.map((c) => `${c.kind} ${c.task}: ${c.status} ${c.pass ? 'pass' : `FAIL ${c.reasons.join('; ')}`}`);
    t.diagnostic(`replay in ${report.durationMs} ms: ${table.join(' | ')}`);
    assert.deepEqual(
      report.cases.map((c) => [c.kind, c.case, c.pass, c.status]),
      [
        ['batch', row!.id, true, 'completed'],
        ['held-out', 'chaos-task-note', true, 'completed'],
        ['held-out', 'task-note-worded', false, 'stopped'],
      ],
      table.join('\n'),
    );
    // The write production made again: answered as production's was, so the task completes as it did.
    assert.deepEqual(report.cases[1]!.reasons, []);
    // The write production never made: a dry run, and the refusal says plainly that this task could not
    // be replayed faithfully, with the calls of both runs.
    const [ended, bound, calls, unfaithful, ...more] = report.cases[2]!.reasons;
    assert.equal(ended, 'the task ended stopped', table.join('\n'));
    assert.match(bound ?? '', /^its max\w+ bound stopped it after \d+ turn\(s\), before an answer$/);
    assert.match(
      calls ?? '',
      /^calls in production: forge_tool, count_words, forge_tool, create_note; in the replay: count_words, create_note \(dry run\), count_words, /,
    );
    assert.match(
      unfaithful ?? '',
      /^create_note changes things outside Forge, so the replay did not run it and answered \d+ call\(s\) as a dry run; production's run made no call with that input, so there was no real output to give the agent\. This held-out task cannot be replayed faithfully: its failure may not be the candidate's doing$/,
    );
    assert.deepEqual(more, []);
    assert.deepEqual(acceptReplay(report, REPLAY_POLICY.passThreshold), {
      accepted: false,
      reason: '1 held-out task(s) that passed in production failed with the candidate',
    });
    // The agent read the note's id as production's run returned it; create_note (which throws if run) never ran.
    const turns = model.requests.filter((r) => r.headers['x-forge-purpose'] === 'task.turn').map((r) => JSON.stringify(r.body));
    assert.ok(
      turns.some((b) => b.includes(`\\"id\\":\\"${NOTE_ID}\\"`)),
      'the agent read the recorded output of create_note',
    );
    assert.ok(!turns.some((b) => b.includes('a replay must never run a write')), 'create_note never ran');
  });
});

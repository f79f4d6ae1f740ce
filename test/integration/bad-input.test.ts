/**
 * The bad input corpus (issue 9, item 9): every way a person, the model, a scenario file or an
 * edited tools folder can hand Forge nonsense, one table row each. Each row states the input, the
 * error a person sees (asserted by the words that name what to fix) and that nothing was lost or
 * half-written (catalog rows, tool folders, approvals, task and forge ledgers as they were).
 *
 *   1. structured model replies, for every purpose, malformed each way (missing field, wrong type,
 *      prose instead of tool_use, oversized): the author functions against the scripted model;
 *   2. the same replies inside real cycles (forge spec/tests/implementation, improve rewrite,
 *      task diagnose, the agent's own turns): the cycle ends with the reason, the catalog untouched;
 *   3. the command line: empty, oversized and badly flagged tasks (exit 2, nothing started);
 *   4. scenario files the scripted model cannot load;
 *   5. decisions sent to the wrong workflow or with stale ids, freeze/thaw misuse;
 *   6. a tool's folder edited into nonsense.
 * One Forge (Temporal, Postgres, Docker, the scripted model) serves parts 2, 3, 5 and 6.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { decideApproval, pendingApprovalList } from '../../app/approvals.ts';
import { openSession } from '../../app/context.ts';
import { freeze, thawForge } from '../../app/control.ts';
import { ForgeError, LlmOutputError } from '../../domain/errors.ts';
import type { ForgeOutcome } from '../../domain/forge.ts';
import type { ImproveOutcome } from '../../domain/improve.ts';
import type { TaskResult } from '../../domain/task.ts';
import { harness } from '../../harness/index.ts';
import type { ScenarioInput, ScenarioResponse } from '../../scripted-model/scenario.ts';
import { loadScenarioFile, startScriptedModel } from '../../scripted-model/server.ts';
import { createRegistry } from '../../services/catalog/registry.ts';
import { takeTurn } from '../../services/llm/agent.ts';
import { createLlm, MAX_REPLY_CHARS_PER_TOKEN } from '../../services/llm/client.ts';
import { createEvolveAuthor } from '../../services/llm/evolve-author.ts';
import { createForgeAuthor } from '../../services/llm/forge-author.ts';
import { createImproveAuthor } from '../../services/llm/improve-author.ts';
import { decideApprovalUpdate } from '../../workflows/definitions.ts';
import { harnessCli } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { romanSource } from '../helpers/roman-tool.ts';
import { until } from '../helpers/wait.ts';

/** Polls `get` until it returns something, and returns that. */
async function found<T>(what: string, get: () => Promise<T | undefined>, ms?: number): Promise<T> {
  let value: T | undefined;
  await until(
    what,
    async () => {
      value = await get();
      return value !== undefined;
    },
    ms,
  );
  return value as T;
}

// ---------------------------------------------------------------------------------------------
// Good replies, each purpose's: the malformed ones below are these, broken one way at a time.

const SPEC = {
  name: 'count_zebras',
  description: 'Counts the zebras named in a text, locally, with no network.',
  docstring: 'Parameter: text. Returns { zebras }: how many times the word zebra occurs.',
  parameters: [{ name: 'text', type: 'string', description: 'the text', required: true }],
  returns: { type: 'object', description: '{ zebras: integer }' },
  sideEffect: 'read',
  destructive: false,
  permissions: { network: [], env: [] },
};
const TESTS = `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from './tool.ts';

test('counts zebras', async () => {
  assert.deepEqual(await run({ text: 'zebra zebra' }, {} as never), { zebras: 2 });
});
`;
const source = (name: string) => `import { z } from 'zod';
export const manifest = {
  name: '${name}',
  description: 'Counts the zebras named in a text.',
  sideEffect: 'read',
  destructive: false,
  permissions: { network: [], env: [] },
  input: z.object({ text: z.string() }),
  output: z.object({ zebras: z.number().int() }),
};
export async function run(input: { text: string }) {
  return { zebras: input.text.split(/\\s+/).filter((w) => w === 'zebra').length };
}
`;

type Way = 'missing field' | 'wrong type' | 'prose' | 'oversized';
const WAYS: Way[] = ['missing field', 'wrong type', 'prose', 'oversized'];

/** A purpose's forced tool, its good input, how each way breaks it and the words the error must hold. */
interface Purpose {
  purpose: string;
  tool: string;
  maxTokens: number;
  broken: Record<Exclude<Way, 'prose' | 'oversized'>, Record<string, unknown>>;
  /** the field each broken reply gets wrong, as the error names it */
  field: Record<Exclude<Way, 'prose' | 'oversized'>, RegExp>;
  /** a good reply grown past its size bound */
  huge: (chars: number) => Record<string, unknown>;
}

const { name: _name, ...specWithoutName } = SPEC;
const PURPOSES: Purpose[] = [
  {
    purpose: 'forge.spec',
    tool: 'submit_spec',
    maxTokens: harness.prompts.forge.spec.maxTokens ?? 4096,
    broken: { 'missing field': specWithoutName, 'wrong type': { ...SPEC, parameters: 'text' } },
    field: { 'missing field': /received undefined\s+→ at name/, 'wrong type': /expected array, received string\s+→ at parameters/ },
    huge: (n) => ({ ...SPEC, docstring: 'z'.repeat(n) }),
  },
  {
    purpose: 'forge.tests',
    tool: 'submit_tests',
    maxTokens: harness.prompts.forge.tests.maxTokens ?? 4096,
    broken: { 'missing field': {}, 'wrong type': { tests: 42 } },
    field: { 'missing field': /received undefined\s+→ at tests/, 'wrong type': /expected string, received number\s+→ at tests/ },
    huge: (n) => ({ tests: `${TESTS}// ${'z'.repeat(n)}\n` }),
  },
  {
    purpose: 'forge.implementation',
    tool: 'submit_implementation',
    maxTokens: harness.prompts.forge.implementation.maxTokens ?? 4096,
    broken: { 'missing field': { notes: 'the source follows in prose' }, 'wrong type': { source: ['export', 'run'] } },
    field: { 'missing field': /received undefined\s+→ at source/, 'wrong type': /expected string, received array\s+→ at source/ },
    huge: (n) => ({ source: `${source('count_zebras')}// ${'z'.repeat(n)}\n` }),
  },
  {
    purpose: 'improve.rewrite',
    tool: 'submit_rewrite',
    maxTokens: harness.prompts.improve.rewrite.maxTokens ?? 4096,
    broken: {
      'missing field': { diagnosis: 'it breaks on 0', tests: '' },
      'wrong type': { diagnosis: 'it breaks on 0', source: romanSource, tests: false },
    },
    field: { 'missing field': /received undefined\s+→ at source/, 'wrong type': /expected string, received boolean\s+→ at tests/ },
    huge: (n) => ({ diagnosis: 'longer', source: `${romanSource}// ${'z'.repeat(n)}\n`, tests: '' }),
  },
  {
    purpose: 'task.diagnose',
    tool: 'submit_diagnosis',
    maxTokens: harness.prompts.improve.diagnose.maxTokens ?? 4096,
    broken: {
      'missing field': { fixable: false, diagnosis: 'the input is out of range' },
      'wrong type': { atFault: 'input', fixable: 'no', diagnosis: 'the input is out of range' },
    },
    field: { 'missing field': /→ at atFault/, 'wrong type': /expected boolean, received string\s+→ at fixable/ },
    huge: (n) => ({ atFault: 'input', fixable: false, diagnosis: 'z'.repeat(n) }),
  },
  {
    purpose: 'evolve.patch',
    tool: 'submit_patch',
    maxTokens: harness.prompts.evolve.patch.maxTokens ?? 4096,
    broken: { 'missing field': { rationale: 'route better' }, 'wrong type': { rationale: 'route better', edits: 'all of them' } },
    field: { 'missing field': /received undefined\s+→ at edits/, 'wrong type': /expected array, received string\s+→ at edits/ },
    huge: (n) => ({ rationale: 'route better', edits: [{ path: 'harness/policy/ranking.ts', content: 'z'.repeat(n) }] }),
  },
];

/** The scripted reply for one purpose broken one way. */
function badReply(p: Purpose, way: Way): ScenarioResponse {
  if (way === 'prose') return { text: `Here is what you asked for, in words rather than a ${p.tool} call.` };
  const input = way === 'oversized' ? p.huge(p.maxTokens * MAX_REPLY_CHARS_PER_TOKEN) : p.broken[way];
  return { tool_use: { name: p.tool, input } };
}

/** The words that name what to fix, per way. */
function namesTheFix(p: Purpose, way: Way): RegExp {
  if (way === 'prose') return new RegExp(`did not call ${p.tool} \\(stop_reason end_turn\\)`);
  if (way === 'oversized')
    return new RegExp(
      `the reply is \\d+ characters, over the ${p.maxTokens * MAX_REPLY_CHARS_PER_TOKEN} a reply of max_tokens=${p.maxTokens} can hold`,
    );
  return p.field[way];
}

const ROMAN_MANIFEST = {
  name: 'roman_numeral',
  version: 1,
  description: 'Writes a whole number in roman numerals.',
  sideEffect: 'read' as const,
  destructive: false,
  permissions: { network: [], env: [] },
  inputSchema: { type: 'object', properties: { number: { type: 'integer' } }, required: ['number'] },
  outputSchema: { type: 'object' },
  createdAt: new Date(0).toISOString(),
  createdBy: 'human' as const,
  sourceSha256: 'a'.repeat(64),
  status: 'verified' as const,
};

/** Calls the author function a purpose belongs to, with good input. */
function callAuthor(purpose: string, llm: ReturnType<typeof createLlm>): Promise<unknown> {
  const forge = createForgeAuthor(llm);
  const spec = { ...SPEC, sideEffect: 'read' as const, parameters: [{ ...SPEC.parameters[0]!, type: 'string' as const }] };
  switch (purpose) {
    case 'forge.spec':
      return forge.writeSpec({ need: 'count the zebras in a text' });
    case 'forge.tests':
      return forge.writeTests({ spec, apiSpec: null });
    case 'forge.implementation':
      return forge.writeImplementation({ spec, apiSpec: null, tests: TESTS });
    case 'improve.rewrite':
      return createImproveAuthor(llm).rewriteTool({
        manifest: ROMAN_MANIFEST,
        apiSpec: null,
        source: romanSource,
        tests: TESTS,
        reason: 'fails on 0',
        failures: [],
        attempt: 1,
      });
    case 'task.diagnose':
      return createImproveAuthor(llm).diagnoseFailure({
        task: 'write 0 in roman numerals',
        tool: 'roman_numeral',
        version: 1,
        input: { number: 0 },
        error: '0 cannot be written in roman numerals',
        source: romanSource,
      });
    case 'evolve.patch':
      return createEvolveAuthor(llm).writeHarnessPatch({
        failureType: 'routing',
        evidence: [{ task: 'count the zebras' }],
        files: { 'harness/policy/ranking.ts': 'export const x = 1;\n' },
        attempt: 1,
      });
    default:
      throw new Error(`no author for ${purpose}`);
  }
}

describe('1. every structured reply, malformed each way, fails by name after one re-ask', () => {
  for (const p of PURPOSES)
    for (const way of WAYS)
      it(`${p.purpose}: ${way}`, async () => {
        const model = await startScriptedModel({
          scenarios: [{ name: 'bad', rules: [{ match: { purpose: p.purpose }, responses: [badReply(p, way)] }] }],
        });
        try {
          const llm = createLlm({ baseURL: model.url, model: 'claude-sonnet-4-6' });
          await assert.rejects(callAuthor(p.purpose, llm), (err: unknown) => {
            assert.ok(err instanceof LlmOutputError, `an LlmOutputError, got ${String(err)}`);
            assert.match(
              err.message,
              new RegExp(`the model's reply for ${p.purpose.replace('.', '\\.')} did not match the expected shape`),
            );
            assert.match(err.message, namesTheFix(p, way));
            // A field of the wrong type is told its type only, not the checks meant for the right one.
            if (way === 'wrong type') assert.doesNotMatch(err.message, /Too (small|big)/);
            assert.match(err.fix ?? '', /scenario file|prompt/);
            assert.ok(JSON.stringify(err.toJSON()).length < 10_000, 'the error carries a clipped copy of the reply, not all of it');
            return true;
          });
          const asked = model.requests.filter((r) => r.headers['x-forge-purpose'] === p.purpose);
          assert.equal(asked.length, 1 + harness.policy.llm.reasks, 'the reply, then a re-ask per policy');
          // The re-ask told the model what was wrong, in the same words.
          const reask = JSON.stringify(asked[1]?.body);
          assert.match(reask, way === 'prose' ? new RegExp(p.tool) : way === 'oversized' ? /characters, over the/ : /→ at/);
        } finally {
          await model.close();
        }
      });

  it('task.turn: an oversized turn fails by name (a turn has no schema to re-ask against)', async () => {
    const model = await startScriptedModel({
      scenarios: [
        { name: 'bad', rules: [{ match: { purpose: 'task.turn' }, responses: [{ text: 'z'.repeat(4096 * MAX_REPLY_CHARS_PER_TOKEN) }] }] },
      ],
    });
    try {
      const llm = createLlm({ baseURL: model.url, model: 'claude-sonnet-4-6' });
      await assert.rejects(
        takeTurn(llm, { messages: [{ role: 'user', content: 'count the zebras' }], tools: [] }),
        (err: unknown) => err instanceof LlmOutputError && /task\.turn[\s\S]*the reply is \d+ characters, over the/.test(err.message),
      );
    } finally {
      await model.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// One Forge for the rest. Every rule is keyed on a marker in the task, need or reason, so the
// cases run side by side without answering each other.

const STAGES = ['spec', 'tests', 'implementation'] as const;
const slug = (way: Way) => way.replace(' ', '_');
const forgeName = (stage: string, way: Way) => `zz_${stage}_${slug(way)}`;
const byPurpose = Object.fromEntries(PURPOSES.map((p) => [p.purpose, p]));

function forgeRules(): ScenarioInput['rules'] {
  const rules: ScenarioInput['rules'] = [];
  for (const way of WAYS) {
    rules.push({ match: { purpose: 'forge.spec', first: `zz-spec-${slug(way)}` }, responses: [badReply(byPurpose['forge.spec']!, way)] });
    for (const stage of ['tests', 'implementation'] as const) {
      const name = forgeName(stage, way);
      rules.push({
        match: { purpose: 'forge.spec', first: `zz-${stage}-${slug(way)}` },
        responses: [{ tool_use: { name: 'submit_spec', input: { ...SPEC, name } } }],
      });
      rules.push({
        match: { purpose: `forge.${stage}`, first: `/^Tool: ${name}$/m` },
        responses: [badReply(byPurpose[`forge.${stage}`]!, way)],
      });
    }
    rules.push({
      match: { purpose: 'improve.rewrite', first: `zz-rewrite-${slug(way)}` },
      responses: [badReply(byPurpose['improve.rewrite']!, way)],
    });
  }
  rules.push({ match: { purpose: 'forge.api' }, responses: [{ tool_use: { name: 'submit_api_spec', input: { needsApi: false } } }] });
  rules.push({ match: { purpose: 'forge.tests' }, responses: [{ tool_use: { name: 'submit_tests', input: { tests: TESTS } } }] });
  return rules;
}

const BIG_ANSWER = 'z'.repeat(4096 * MAX_REPLY_CHARS_PER_TOKEN);
const TURNS: { marker: string; first: ScenarioResponse }[] = [
  { marker: 'zz-turn-missing', first: { tool_use: { name: 'forge_tool', input: {} } } },
  { marker: 'zz-turn-type', first: { tool_use: { name: 'search_tools', input: { query: 42 } } } },
  { marker: 'zz-turn-unknown', first: { tool_use: { name: 'drop_all_tables', input: { really: true } } } },
  { marker: 'zz-turn-prose', first: { text: 'I would call forge_tool({"description": "count zebras"}) here.' } },
  { marker: 'zz-turn-huge', first: { text: BIG_ANSWER } },
];

function turnRules(): ScenarioInput['rules'] {
  return [
    ...TURNS.map((t) => ({
      match: { purpose: 'task.turn', first: t.marker },
      responses: [t.first, { text: 'I could not do that with the tools I have.' }],
    })),
    {
      match: { purpose: 'task.turn', first: 'zz-ask' },
      responses: [{ tool_use: { name: 'ask_person', input: { question: 'Which zebra, zz?' } } }],
    },
    // The diagnose case: roman_numeral asked for 0 fails, the diagnosis comes back as prose.
    {
      match: { purpose: 'task.turn', first: 'zz-diagnose', user: 'escalated to a person' },
      responses: [{ text: 'roman_numeral cannot write 0; a person declined a retry.' }],
    },
    { match: { purpose: 'task.turn', first: 'zz-diagnose' }, responses: [{ tool_use: { name: 'roman_numeral', input: { number: 0 } } }] },
    { match: { purpose: 'task.diagnose' }, responses: [badReply(byPurpose['task.diagnose']!, 'prose')] },
  ];
}

let h: Harness;
let cli: ReturnType<typeof harnessCli>;
const toolsDir = () => path.join(h.home, 'tools');

/** What must not change when a bad input is refused: the catalog, on disk and in the database. */
async function catalogSnapshot() {
  const versions = await h.db.sql`select name, version, status, files_sha256 from tool_versions order by name, version`;
  const tools = await h.db.sql`select name, current_version, status from tools order by name`;
  const onDisk = fs.existsSync(toolsDir())
    ? fs
        .readdirSync(toolsDir())
        .filter((f) => !f.startsWith('.'))
        .sort()
    : [];
  return JSON.stringify({ versions, tools, onDisk });
}

before(async () => {
  h = await startHarness({
    scenarios: [{ name: 'bad-input', rules: [...forgeRules(), ...turnRules()] }],
    env: { FORGE_DAILY_FORGE_BUDGET: '100' },
  });
  cli = harnessCli(h, { user: 'tester', timeoutMs: 60_000 });
  await createRegistry({ sql: h.db.sql, root: toolsDir() }).registerVersion({
    name: 'roman_numeral',
    source: romanSource,
    tests: TESTS.replace('counts zebras', 'writes roman numerals').replace(
      "assert.deepEqual(await run({ text: 'zebra zebra' }, {} as never), { zebras: 2 });",
      "assert.deepEqual(await run({ number: 4 }, {} as never), { roman: 'IV' });",
    ),
    manifest: {
      description: ROMAN_MANIFEST.description,
      sideEffect: 'read',
      destructive: false,
      permissions: { network: [], env: [] },
      inputSchema: ROMAN_MANIFEST.inputSchema,
      outputSchema: { type: 'object' },
    },
    createdBy: 'human',
    idempotencyKey: 'bad-input:roman_numeral',
  });
});

after(() => h?.close());

describe('2. malformed replies inside real cycles end them by name, the catalog untouched', () => {
  it('forge: spec, tests and implementation, each malformed each way (12 forges side by side)', async () => {
    const beforeCatalog = await catalogSnapshot();
    const cases = STAGES.flatMap((stage) => WAYS.map((way) => ({ stage, way })));
    const outcomes = await Promise.all(
      cases.map(async ({ stage, way }) => {
        const handle = await h.client.workflow.start('forgeWorkflow', {
          taskQueue: h.cfg.FORGE_TASK_QUEUE,
          workflowId: `forge-bad-${stage}-${slug(way)}-${Date.now()}`,
          args: [{ need: `count the zebras in a text (zz-${stage}-${slug(way)})`, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
        });
        return { stage, way, workflowId: handle.workflowId, outcome: (await handle.result()) as ForgeOutcome };
      }),
    );
    for (const { stage, way, workflowId, outcome } of outcomes) {
      const p = byPurpose[`forge.${stage}`]!;
      assert.equal(outcome.status, 'failed', `${stage}/${way}`);
      const reason = outcome.status === 'failed' ? outcome.reason : '';
      assert.match(
        reason,
        new RegExp(`^the ${stage} step failed: the model's reply for forge\\.${stage} did not match`),
        `${stage}/${way}`,
      );
      assert.match(reason, namesTheFix(p, way), `${stage}/${way}`);
      const [run] = await h.db.sql`select status, reason from forge_runs where workflow_id = ${workflowId}`;
      assert.equal(run?.status, 'failed', `${stage}/${way}: the ledger says failed`);
      assert.equal(run?.reason, reason, `${stage}/${way}: with the same reason`);
      assert.equal((await h.db.sql`select 1 from approvals where workflow_id = ${workflowId}`).length, 0);
    }
    assert.equal(await catalogSnapshot(), beforeCatalog, 'no tool, version or folder was written');
  });

  it('improve: a malformed rewrite each way ends the cycle failed; roman_numeral v1 stays current', async () => {
    const beforeCatalog = await catalogSnapshot();
    const outcomes = await Promise.all(
      WAYS.map(async (way) => {
        const handle = await h.client.workflow.start('improveWorkflow', {
          taskQueue: h.cfg.FORGE_TASK_QUEUE,
          workflowId: `improve-bad-${slug(way)}-${Date.now()}`,
          args: [{ tool: 'roman_numeral', trigger: 'manual', reason: `zz-rewrite-${slug(way)}`, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
        });
        return { way, workflowId: handle.workflowId, outcome: (await handle.result()) as ImproveOutcome };
      }),
    );
    for (const { way, workflowId, outcome } of outcomes) {
      assert.equal(outcome.status, 'failed', way);
      assert.match(outcome.reason, /^the rewriting step failed: the model's reply for improve\.rewrite did not match/, way);
      assert.match(outcome.reason, namesTheFix(byPurpose['improve.rewrite']!, way), way);
      assert.match(outcome.reason, /roman_numeral v1 stays current$/, way);
      const [run] = await h.db.sql`select status from improve_runs where workflow_id like ${`${workflowId}@%`}`;
      assert.equal(run?.status, 'failed', `${way}: the ledger says failed`);
    }
    assert.equal(await catalogSnapshot(), beforeCatalog, 'no version was registered, nothing moved on disk');
  });

  it("the agent's own turns: a slip is fed back by name, prose is an answer, an oversized turn fails the task", async () => {
    const beforeCatalog = await catalogSnapshot();
    const runs = await Promise.all(
      TURNS.map(async (t) => {
        const handle = await h.client.workflow.start('taskWorkflow', {
          taskQueue: h.cfg.FORGE_TASK_QUEUE,
          workflowId: `task-bad-${t.marker}-${Date.now()}`,
          args: [{ task: `count the zebras in this text, please (${t.marker})`, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
        });
        const result = await (handle.result() as Promise<TaskResult>).catch((err: unknown) => err);
        return { marker: t.marker, workflowId: handle.workflowId, result };
      }),
    );
    const by = Object.fromEntries(runs.map((r) => [r.marker, r]));
    const call = (marker: string) => (by[marker]!.result as TaskResult).calls[0];

    // Missing field: forge_tool without a description is refused before any forge starts, and said so.
    assert.equal(call('zz-turn-missing')?.slip, 'invalid-input');
    assert.match(call('zz-turn-missing')?.reason ?? '', /description: /);
    // Wrong type: search_tools with a number for its query.
    assert.equal(call('zz-turn-type')?.slip, 'invalid-input');
    assert.match(call('zz-turn-type')?.reason ?? '', /query: .*expected string/);
    // A tool it was never offered: not run, and the model is told which ones are.
    assert.equal(call('zz-turn-unknown')?.slip, 'unknown-tool');
    assert.equal(call('zz-turn-unknown')?.status, 'not-run');
    assert.match(
      call('zz-turn-unknown')?.reason ?? '',
      /drop_all_tables is not one of the offered tools \(.*\); use search_tools or forge_tool/,
    );
    for (const marker of ['zz-turn-missing', 'zz-turn-type', 'zz-turn-unknown']) {
      const r = by[marker]!.result as TaskResult;
      assert.equal(r.answer, 'I could not do that with the tools I have.', `${marker}: the model went on after the slip`);
    }
    // Prose that reads like a tool call is an answer in words: nothing runs.
    const prose = by['zz-turn-prose']!.result as TaskResult;
    assert.equal(prose.status, 'completed');
    assert.deepEqual(prose.calls, []);
    assert.match(prose.answer, /^I would call forge_tool/);
    // An oversized turn fails the task, by name, and the ledger says so.
    const huge = by['zz-turn-huge']!;
    assert.ok(huge.result instanceof WorkflowFailedError, 'the task failed');
    const [row] = await h.db.sql`select status, error from tasks where workflow_id = ${huge.workflowId}`;
    assert.equal(row?.status, 'failed');
    assert.match(String(row?.error), /task\.turn did not match the expected shape: the reply is \d+ characters, over the 40960/);
    assert.equal((await h.db.sql`select 1 from forge_runs`).length, 12, 'no forge beyond the 12 above started');
    assert.equal(await catalogSnapshot(), beforeCatalog);
  });
});

describe('3. the command line: a bad task is refused with exit 2 and starts nothing', () => {
  it('empty, oversized, unknown flag, bad bound, bad session id', async () => {
    const tasksBefore = (await h.db.sql`select count(*)::int as n from tasks`)[0]!.n as number;
    const cases: { args: string[]; fix: RegExp }[] = [
      { args: ['run', ''], fix: /forge run needs a task: what the agent should do/ },
      { args: ['run', 'z'.repeat(4001)], fix: /invalid task: keep the task under 4000 characters/ },
      { args: ['run', 'count the zebras', '--bogus'], fix: /^error: unknown option '--bogus'[\s\S]*usage: forge run "<task>"/ },
      {
        args: ['run', 'count the zebras', '--max-turns', 'lots'],
        fix: /--max-turns "lots" is not valid: it takes a whole number from 1 to 50/,
      },
      { args: ['run', 'count the zebras', '--session', 'Not A Slug!'], fix: /a session id is a short slug/ },
      { args: ['run', 'count the zebras', '--wait', '--max-turns'], fix: /^error: option '--max-turns <value>' argument missing/ },
    ];
    const ran = await Promise.all(cases.map((c) => cli(...c.args)));
    for (const [i, r] of ran.entries()) {
      const c = cases[i]!;
      assert.equal(r.code, 2, `${c.args.join(' ').slice(0, 60)}: exit 2 (bad usage)\n${r.stderr}`);
      assert.match(r.stderr, c.fix, c.args.join(' ').slice(0, 60));
      assert.match(r.stderr, /^error: .*\n {2}fix: /m, 'the message, then how to fix it');
      assert.equal(r.stdout, '', 'nothing on stdout');
    }
    const json = await cli('run', '', '--json');
    assert.equal(json.code, 2);
    assert.deepEqual({ ok: json.json().ok, error: json.json().error }, { ok: false, error: 'USAGE' }, 'the same refusal as one JSON line');
    assert.equal((await h.db.sql`select count(*)::int as n from tasks`)[0]!.n, tasksBefore, 'no task was started');
  });
});

describe('4. scenario files the scripted model cannot load name the file and the field', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-bad-scenarios-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cases: { name: string; text: string; fix: RegExp }[] = [
    { name: 'not-json', text: '{ "name": "x", rules: [', fix: /not-json\.json.*(JSON|property name)/ },
    { name: 'empty', text: '', fix: /empty\.json.*(Unexpected end|JSON)/ },
    { name: 'no-rules', text: '{"name":"x"}', fix: /no-rules\.json[\s\S]*→ at rules/ },
    { name: 'rules-empty', text: '{"name":"x","rules":[]}', fix: /rules-empty\.json[\s\S]*>=1 items\s+→ at rules/ },
    {
      name: 'two-kinds',
      text: '{"name":"x","rules":[{"responses":[{"text":"a","tool_use":{"name":"t","input":{}}}]}]}',
      fix: /two-kinds\.json[\s\S]*exactly one of text, tool_use, content, error; this one has text and tool_use[\s\S]*→ at rules\[0\]\.responses\[0\]/,
    },
    {
      name: 'bad-regex',
      text: '{"name":"x","rules":[{"match":{"user":"/(unclosed/"},"responses":[{"text":"a"}]}]}',
      fix: /bad-regex\.json[\s\S]*not a valid regular expression[\s\S]*→ at rules\[0\]\.match\.user/,
    },
    {
      name: 'typo-key',
      text: '{"name":"x","rules":[{"mtach":{"purpose":"task.turn"},"responses":[{"text":"a"}]}]}',
      fix: /typo-key\.json[\s\S]*Unrecognized key: "mtach"/,
    },
    {
      name: 'bad-status',
      text: '{"name":"x","rules":[{"responses":[{"error":{"status":200,"message":"fine"}}]}]}',
      fix: /bad-status\.json[\s\S]*→ at rules\[0\]\.responses\[0\]\.error\.status/,
    },
    {
      name: 'wrong-type',
      text: '{"name":"x","rules":[{"responses":[{"tool_use":{"name":"t","input":"not an object"}}]}]}',
      fix: /wrong-type\.json[\s\S]*expected record[\s\S]*→ at rules\[0\]\.responses\[0\]\.tool_use\.input/,
    },
  ];
  for (const c of cases)
    it(c.name, async () => {
      const file = path.join(dir, `${c.name}.json`);
      fs.writeFileSync(file, c.text);
      const check = (err: unknown) => {
        assert.ok(err instanceof ForgeError && err.code === 'INPUT_INVALID', String(err));
        assert.match(err.message, c.fix);
        assert.match(err.fix ?? '', /fix the scenario file/);
        return true;
      };
      await assert.rejects(loadScenarioFile(file), check);
      await assert.rejects(startScriptedModel({ scenarioFiles: [file] }), check, 'the server refuses to start on it');
    });
});

describe('5. decisions sent to the wrong workflow or with stale ids', () => {
  it('a waiting task refuses a decision for another id; a closed one refuses any; the ledger holds the truth', async () => {
    const session = openSession(h.cfg);
    try {
      const handle = await h.client.workflow.start('taskWorkflow', {
        taskQueue: h.cfg.FORGE_TASK_QUEUE,
        workflowId: `task-bad-diagnose-${Date.now()}`,
        args: [{ task: 'write 0 in roman numerals (zz-diagnose)', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
      });
      // roman_numeral(0) fails, the diagnosis is prose: an unknown cause, which only a person can fix.
      const approval = await found('the escalation', async () => {
        const [row] = await h.db.sql`select id, kind, status from approvals where workflow_id = ${handle.workflowId}`;
        return row?.status === 'pending' ? (row as { id: string; kind: string }) : undefined;
      });
      assert.equal(approval.kind, 'escalation');

      // The update straight to the workflow, with an id it does not wait for.
      await assert.rejects(
        handle.executeUpdate(decideApprovalUpdate, { args: [{ approvalId: 'task-other.write.1', approve: true, by: 'tester' }] }),
        (err: Error) =>
          new RegExp(`waits for approval ${approval.id}, not task-other\\.write\\.1`).test(
            (err.cause as Error | undefined)?.message ?? err.message,
          ),
      );
      // The right id to the wrong workflow: one of the tasks above, long finished.
      const closed = h.client.workflow.getHandle(await someClosedTask());
      await assert.rejects(
        closed.executeUpdate(decideApprovalUpdate, { args: [{ approvalId: approval.id, approve: true, by: 'tester' }] }),
        (err: Error) => /completed|not found|closed/i.test(err.message),
      );
      // An answer to something that is not a question.
      await assert.rejects(
        decideApproval(session, { id: approval.id, approve: true, by: 'tester', answer: 'zebra' }),
        (err: ForgeError) => {
          assert.equal(err.code, 'APPROVAL_NOT_A_QUESTION');
          assert.match(err.fix ?? '', new RegExp(`forge approve ${approval.id.replace(/\./g, '\\.')}`));
          return true;
        },
      );
      assert.equal((await h.db.sql`select status from approvals where id = ${approval.id}`)[0]?.status, 'pending', 'still pending');

      const decided = await decideApproval(session, { id: approval.id, approve: false, by: 'tester' });
      assert.equal(decided.accepted, true);
      const result = (await handle.result()) as TaskResult;
      const failed = result.calls[0]!;
      assert.match(
        failed.recovery?.diagnosis?.diagnosis ?? '',
        /could not be diagnosed .*task\.diagnose did not match the expected shape: the reply did not call submit_diagnosis/,
      );
      assert.equal(failed.recovery?.escalation?.decision, 'declined');

      // The same id again: already decided, by whom, and nothing changes.
      await assert.rejects(decideApproval(session, { id: approval.id, approve: true, by: 'someone-else' }), (err: ForgeError) => {
        assert.equal(err.code, 'APPROVAL_DECIDED');
        assert.match(err.message, /is already rejected \(by tester\)/);
        assert.match(err.fix ?? '', /forge approvals/);
        return true;
      });
      const [row] = await h.db.sql`select status, decided_by from approvals where id = ${approval.id}`;
      assert.deepEqual({ ...row }, { status: 'rejected', decided_by: 'tester' });
      // An id nobody issued.
      await assert.rejects(
        decideApproval(session, { id: 'task-nobody.write.9', approve: true, by: 'tester' }),
        (err: ForgeError) => err.code === 'APPROVAL_NOT_FOUND' && /forge approvals/.test(err.fix ?? ''),
      );
      assert.equal(
        (await h.db.sql`select 1 from improve_runs where tool = 'roman_numeral' and trigger <> 'manual'`).length,
        0,
        'no repair',
      );
    } finally {
      await session.close();
    }
  });

  it('an approval whose workflow was terminated is stale: refused by name, and no longer listed as waiting', async () => {
    const session = openSession(h.cfg);
    try {
      const handle = await h.client.workflow.start('taskWorkflow', {
        taskQueue: h.cfg.FORGE_TASK_QUEUE,
        workflowId: `task-bad-stale-${Date.now()}`,
        args: [{ task: 'ask me which zebra to count (zz-ask)', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
      });
      const id = await found('the question', async () => {
        const [row] = await h.db.sql`select id from approvals where workflow_id = ${handle.workflowId} and status = 'pending'`;
        return row?.id as string | undefined;
      });
      await handle.terminate('a person stopped it from the Temporal UI');
      await assert.rejects(decideApproval(session, { id, approve: false, by: 'tester' }), (err: ForgeError) => {
        assert.equal(err.code, 'APPROVAL_STALE');
        assert.match(
          err.message,
          new RegExp(`approval ${id.replace(/\./g, '\\.')} is stale: its workflow ${handle.workflowId} is terminated`),
        );
        return true;
      });
      assert.equal((await h.db.sql`select status from approvals where id = ${id}`)[0]?.status, 'expired');
      assert.ok(!(await pendingApprovalList(h.cfg)).some((a) => a.id === id), 'forge approvals no longer lists it');
      // And through the CLI, deciding it again: already expired, exit 1, one JSON line.
      const again = await cli('approve', id, '--json');
      assert.equal(again.code, 1);
      assert.equal(again.json().error, 'APPROVAL_DECIDED');
    } finally {
      await session.close();
    }
  });

  it('freeze twice keeps the first freeze; thaw twice changes nothing the second time', async () => {
    // The first freeze and the first thaw through the use case the CLI calls; the misuse through the CLI, as a person sees it.
    assert.equal((await freeze(h.cfg, 'tester', 'first: a runaway tool')).alreadyFrozen, undefined);
    const second = await cli('freeze', '--reason', 'second');
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^Forge was already frozen by tester since .* \(first: a runaway tool\): nothing changed/);
    // Nothing was running: it says so with the number, instead of counting containers it did not kill.
    assert.match(second.stdout, /nothing changed; killed 0 sandboxes started for a job\. Resume with: forge thaw\n$/);
    const [state] = await h.db.sql`select value from system_state where key = 'kill_switch'`;
    assert.equal((state?.value as { reason?: string } | undefined)?.reason, 'first: a runaway tool', 'the first reason is not overwritten');
    assert.equal((await thawForge(h.cfg, 'tester')).wasFrozen, true);
    const again = await cli('thaw');
    assert.equal(again.code, 0);
    assert.match(again.stdout, /^Forge was not frozen: nothing changed/);
    const [after] = await h.db.sql`select value from system_state where key = 'kill_switch'`;
    assert.equal((after?.value as { frozen?: boolean } | undefined)?.frozen, false);
  });
});

/** A task workflow of this file that has finished. */
async function someClosedTask(): Promise<string> {
  const [row] = await h.db.sql`select workflow_id from tasks where status <> 'running' order by updated_at limit 1`;
  assert.ok(row, 'a finished task');
  return row.workflow_id as string;
}

describe('6. a tools folder edited into nonsense: each edit set aside by name, the last good version runs on', () => {
  const version = () => path.join(toolsDir(), 'roman_numeral', 'v1');
  const rejections = async () =>
    (await h.db.sql`select reasoning, input from audit_log where kind = 'human_edit_rejected' and tool = 'roman_numeral' order by id`).map(
      (r) => ({ reason: String(r.reasoning), savedTo: (r.input as { savedTo: string }).savedTo }),
    );

  const edits: { what: string; edit: () => void; reason: RegExp; saved: (dir: string) => boolean }[] = [
    {
      what: 'tool.ts emptied',
      edit: () => fs.writeFileSync(path.join(version(), 'tool.ts'), ''),
      reason: /^tool\.ts is missing or empty$/,
      saved: (dir) => !fs.existsSync(path.join(dir, 'tool.ts')) || fs.readFileSync(path.join(dir, 'tool.ts'), 'utf8') === '',
    },
    {
      what: 'manifest.json not JSON',
      edit: () => fs.writeFileSync(path.join(version(), 'manifest.json'), '{ name: roman, oops'),
      reason: /^manifest\.json \/ api-spec\.json invalid: .*JSON/,
      saved: (dir) => fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8') === '{ name: roman, oops',
    },
    {
      what: 'manifest.json with the wrong shape',
      edit: () => fs.writeFileSync(path.join(version(), 'manifest.json'), JSON.stringify({ description: 42, sideEffect: 'maybe' })),
      reason: /^manifest\.json \/ api-spec\.json invalid: [\s\S]*sideEffect/,
      saved: (dir) => fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8').includes('maybe'),
    },
    {
      what: 'tool.ts replaced by prose',
      edit: () => fs.writeFileSync(path.join(version(), 'tool.ts'), 'This tool writes roman numerals. Ask Bob how.\n'),
      reason: /./,
      saved: (dir) => fs.readFileSync(path.join(dir, 'tool.ts'), 'utf8').startsWith('This tool writes'),
    },
  ];

  it('each edit in turn', async () => {
    const good = Object.fromEntries(['tool.ts', 'manifest.json'].map((f) => [f, fs.readFileSync(path.join(version(), f), 'utf8')]));
    const beforeCatalog = await catalogSnapshot();
    // Stray files and folders beside the tools are not tools: ignored, never registered.
    fs.writeFileSync(path.join(toolsDir(), 'notes.txt'), 'zebras are striped');
    fs.mkdirSync(path.join(toolsDir(), 'not_a_tool', 'v1'), { recursive: true });
    fs.writeFileSync(path.join(toolsDir(), 'not_a_tool', 'v1', 'tool.ts'), 'export const nothing = 1;\n');
    // The whole version folder deleted: put back from the catalog at once, not at the next worker start;
    // the edits below then show the restored folder is watched again.
    fs.rmSync(version(), { recursive: true });
    await until('the deleted folder put back', async () =>
      Object.entries(good).every(
        ([f, text]) => fs.existsSync(path.join(version(), f)) && fs.readFileSync(path.join(version(), f), 'utf8') === text,
      ),
    );
    assert.equal((await rejections()).length, 0, 'a deleted folder is restored, not taken for an edit');
    for (const [n, e] of edits.entries()) {
      e.edit();
      const all = await found(`${e.what}: set aside`, async () => ((await rejections()).length > n ? rejections() : undefined), 60_000);
      const r = all[n]!;
      assert.match(r.reason, e.reason, e.what);
      assert.ok(e.saved(r.savedTo), `${e.what}: the person's edit is kept in ${r.savedTo}, not lost`);
      await until(`${e.what}: the registered files put back`, async () =>
        Object.entries(good).every(
          ([f, text]) => fs.existsSync(path.join(version(), f)) && fs.readFileSync(path.join(version(), f), 'utf8') === text,
        ),
      );
    }
    fs.rmSync(path.join(toolsDir(), 'notes.txt'));
    fs.rmSync(path.join(toolsDir(), 'not_a_tool'), { recursive: true });
    assert.equal(await catalogSnapshot(), beforeCatalog, 'v1 is still current; no version was added');
    // The person reads why in the audit log.
    const audit = await cli('audit', '--kind', 'human_edit_rejected', '--json');
    assert.equal(audit.code, 0, audit.stderr);
    assert.equal((audit.json().entries as unknown[]).length, edits.length);
  });
});

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ImproveOutcome } from '../../domain/improve.ts';
import type { TaskResult } from '../../domain/task.ts';
import { sleep } from '../../infra/processes.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { createRegistry } from '../../services/catalog/registry.ts';
import { decideApprovalUpdate } from '../../workflows/definitions.ts';
import { harnessCli } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { romanSource } from '../helpers/roman-tool.ts';

// A task's self-repair when a repair is not the answer (issue 8, item 11; issue 10, item 2), on a
// real Forge: Temporal, Postgres, Docker and the scripted model (the diagnoses below are its
// replies). test/integration/improve.test.ts covers the repaired path; here:
//   - sign_message needs a secret nobody set: diagnosed 'environment', escalated to a person, who
//     rejects (the task fails and says so) or sets the secret and approves (the call is retried once);
//   - stock_quote and fx_rate read a feed that answers 503: retried with backoff, then diagnosed and
//     escalated, or the feed comes back and a retry succeeds;
//   - roman_numeral asked for 0: the caller's mistake, no repair, no escalation;
//   - city_timezone is slow on one path: after its 5th call the evaluator asks for a rewrite.
// The tools are registered as a person would (createdBy 'human'). Tools keep no state between
// calls and the sandbox has no network here (and the egress proxy refuses private addresses, so
// no local server can play an upstream): what the world is like is a variable of the worker's
// environment that the tool declares, read on every call. Setting it mid-task is the world
// changing: a person configuring the secret, the feed coming back.

const SIGN = (text: string) => `sign the message "${text}" with the team signing secret`;
const STOCK_TASK = 'what is the latest price of the stock ACME?';
const FX_TASK = 'what is the exchange rate of the currency EUR against the US dollar?';
const ROMAN_TASK = 'write 0 in roman numerals';
const TZ_TASK = 'what time zones are the cities Paris, Oslo, Lima, Timbuktu and Springfield in?';
/**
 * city_timezone's slow path. Two of the five calls take it: with 4 successes in 5, the score
 * 0.5·0.8 + 0.3·latency + 0.2·consistency stays under 0.6 for any sandbox overhead (0 to 2 s a call).
 */
const SLOW_MS = 10_000;

const SECRET_VAR = 'FORGE_TEST_SIGNING_SECRET';
const STOCK_FEED = 'FORGE_TEST_QUOTES_FEED';
const FX_FEED = 'FORGE_TEST_RATES_FEED';

// ---------------------------------------------------------------------------------------------
// The tools (tool.ts as the tool contract has it; docs/tool-contract.md)

const signSource = `import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

export const manifest = {
  name: 'sign_message',
  description: 'Signs a message with the team signing secret: its HMAC-SHA256 signature, in hex.',
  sideEffect: 'read',
  destructive: false,
  permissions: { network: [], env: ['${SECRET_VAR}'] },
  input: z.object({ message: z.string().min(1).max(10_000) }).meta({ examples: [{ message: 'ship it' }] }),
  output: z.object({ signature: z.string() }),
};

type Input = z.output<typeof manifest.input>;
type Output = z.output<typeof manifest.output>;

export async function run(input: Input, ctx: ToolContext): Promise<Output> {
  const secret = ctx.env.${SECRET_VAR};
  if (!secret) throw new Error('${SECRET_VAR} is not set: the signing secret was never configured for this tool');
  const bytes = (s: string) => new TextEncoder().encode(s);
  const key = await crypto.subtle.importKey('raw', bytes(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, bytes(input.message)));
  return { signature: Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join('') };
}
`;

/** A read of a feed whose latest snapshot (JSON) is in a declared variable; while the feed is down, it is not there. */
const feedSource = (o: {
  name: string;
  description: string;
  feed: string;
  key: string;
  value: string;
  service: string;
}) => `import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

export const manifest = {
  name: '${o.name}',
  description: '${o.description}',
  sideEffect: 'read',
  destructive: false,
  permissions: { network: [], env: ['${o.feed}'] },
  input: z.object({ ${o.key}: z.string().regex(/^[A-Z]{3,5}$/) }),
  output: z.object({ ${o.key}: z.string(), ${o.value}: z.number() }),
};

export async function run(input: { ${o.key}: string }, ctx: ToolContext) {
  const snapshot = ctx.env.${o.feed};
  if (!snapshot) throw new Error('the ${o.service} answered 503 Service Unavailable');
  const table = JSON.parse(snapshot) as Record<string, number>;
  const found = table[input.${o.key}];
  if (found === undefined) throw new Error(\`the ${o.service} has no ${o.value} for \${input.${o.key}}\`);
  return { ${o.key}: input.${o.key}, ${o.value}: found };
}
`;

const tzHead = `import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

export const manifest = {
  name: 'city_timezone',
  description: 'The IANA time zone of a city, by its name.',
  sideEffect: 'read',
  destructive: false,
  permissions: { network: [], env: [] },
  input: z.object({ city: z.string().min(1).max(100) }).meta({ examples: [{ city: 'Paris' }] }),
  output: z.object({ city: z.string(), timeZone: z.string() }),
};

type Input = z.output<typeof manifest.input>;
type Output = z.output<typeof manifest.output>;
`;

/** v1: a hot list answers at once; any other city is a scan of the whole gazetteer, slow (a fixed wait here, the same on any machine). */
const tzSource = `${tzHead}
const HOT: Record<string, string> = { paris: 'Europe/Paris', oslo: 'Europe/Oslo', lima: 'America/Lima' };
const GAZETTEER: Record<string, string[]> = {
  timbuktu: ['Africa/Bamako'],
  springfield: ['America/Chicago', 'America/New_York', 'America/Los_Angeles'],
};

export async function run(input: Input, ctx: ToolContext): Promise<Output> {
  const key = input.city.trim().toLowerCase();
  const hot = HOT[key];
  if (hot) return { city: input.city, timeZone: hot };
  await new Promise((resolve) => setTimeout(resolve, ${SLOW_MS}));
  const zones = GAZETTEER[key] ?? [];
  if (zones.length > 1) throw new Error(\`"\${input.city}" is ambiguous: places of that name lie in \${zones.join(', ')}; say which country or state\`);
  if (!zones[0]) throw new Error(\`no city named "\${input.city}"\`);
  ctx.log.debug('found in the gazetteer', { city: input.city });
  return { city: input.city, timeZone: zones[0] };
}
`;

const tzTests = `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testContext } from '@forge/testkit';
import { run } from './tool.ts';

test('answers a city of the hot list', async () => {
  assert.deepEqual(await run({ city: 'Paris' }, testContext()), { city: 'Paris', timeZone: 'Europe/Paris' });
});

test('ignores case and surrounding blanks', async () => {
  assert.deepEqual(await run({ city: '  oslo ' }, testContext()), { city: '  oslo ', timeZone: 'Europe/Oslo' });
});
`;

/** The rewrite the evaluator's cycle gets: one index, no scan; an ambiguous name resolves to its most populous place. */
const tzRewrite = `${tzHead}
/** Every city, indexed by its lower-cased name: the most populous place of a name first. */
const INDEX: Record<string, string> = {
  paris: 'Europe/Paris',
  oslo: 'Europe/Oslo',
  lima: 'America/Lima',
  timbuktu: 'Africa/Bamako',
  springfield: 'America/Chicago',
};

export async function run(input: Input, _ctx: ToolContext): Promise<Output> {
  const zone = INDEX[input.city.trim().toLowerCase()];
  if (!zone) throw new Error(\`no city named "\${input.city}"\`);
  return { city: input.city, timeZone: zone };
}
`;

const tzRewriteTests = `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testContext } from '@forge/testkit';
import { run } from './tool.ts';

test('resolves an ambiguous name to its most populous place', async () => {
  assert.deepEqual(await run({ city: 'Springfield' }, testContext()), { city: 'Springfield', timeZone: 'America/Chicago' });
});
`;

const schema = (props: Record<string, { type: string; description: string }>) => ({
  type: 'object',
  properties: props,
  required: Object.keys(props),
  additionalProperties: false,
});

const TOOLS = [
  {
    name: 'sign_message',
    source: signSource,
    description: 'Signs a message with the team signing secret: its HMAC-SHA256 signature, in hex.',
    env: [SECRET_VAR],
    input: schema({ message: { type: 'string', description: 'the message to sign' } }),
  },
  {
    name: 'stock_quote',
    source: feedSource({
      name: 'stock_quote',
      description: 'The latest price of a stock, by ticker symbol, from the quotes feed.',
      feed: STOCK_FEED,
      key: 'symbol',
      value: 'price',
      service: 'quotes feed',
    }),
    description: 'The latest price of a stock, by ticker symbol, from the quotes feed.',
    env: [STOCK_FEED],
    input: schema({ symbol: { type: 'string', description: 'the ticker symbol, e.g. ACME' } }),
  },
  {
    name: 'fx_rate',
    source: feedSource({
      name: 'fx_rate',
      description: 'The exchange rate of a currency code against the US dollar, from the rates feed.',
      feed: FX_FEED,
      key: 'currency',
      value: 'rate',
      service: 'rates feed',
    }),
    description: 'The exchange rate of a currency code against the US dollar, from the rates feed.',
    env: [FX_FEED],
    input: schema({ currency: { type: 'string', description: 'the ISO currency code, e.g. EUR' } }),
  },
  {
    name: 'roman_numeral',
    source: romanSource,
    description: 'Writes a whole number in roman numerals.',
    env: [],
    input: schema({ number: { type: 'integer', description: 'the number to write' } }),
  },
  {
    name: 'city_timezone',
    source: tzSource,
    tests: tzTests,
    description: 'The IANA time zone of a city, by its name.',
    env: [],
    input: schema({ city: { type: 'string', description: 'the name of the city' } }),
  },
];

// ---------------------------------------------------------------------------------------------
// The model: agent turns keyed on each task's words, and the diagnoses (purpose task.diagnose,
// whose user text starts "Tool: <name> v<version>").

const diagnosis = (tool: string, error: string, atFault: string, text: string) => ({
  name: `diagnosis: ${tool} (${atFault})`,
  match: { purpose: 'task.diagnose', user: `/^Tool: ${tool} v\\d+[\\s\\S]*${error}/m` },
  responses: [{ tool_use: { name: 'submit_diagnosis', input: { atFault, fixable: false, diagnosis: text } } }],
});

/** A task's rules: answer from the result, say what failed, else call the tool with the task's words. */
const calls = (o: { tool: string; first: string; result: string; answer: string; input: Record<string, unknown> }) => [
  { name: `${o.tool}: answer`, match: { purpose: 'task.turn', first: o.first, user: o.result }, responses: [{ text: o.answer }] },
  {
    name: `${o.tool}: say what failed`,
    match: { purpose: 'task.turn', first: o.first, user: '/(the call failed: [\\s\\S]*?) (?:Tell the user|Call \\w+ differently)/' },
    responses: [{ text: 'I could not do it: {{user.1}}' }],
  },
  {
    name: `${o.tool}: call`,
    match: { purpose: 'task.turn', tool: o.tool, first: o.first },
    responses: [{ tool_use: { name: o.tool, input: o.input } }],
  },
];

const scenario: ScenarioInput = {
  name: 'self-repair',
  rules: [
    diagnosis(
      'sign_message',
      `${SECRET_VAR} is not set`,
      'environment',
      `${SECRET_VAR} is not set on the worker that runs sign_message: a person must configure the signing secret; no rewrite can supply it.`,
    ),
    diagnosis('stock_quote', '503 Service Unavailable', 'environment', 'The quotes feed is down (503) and stayed down through 3 retries.'),
    diagnosis(
      'roman_numeral',
      'cannot be written in roman numerals',
      'input',
      'Roman numerals have no zero: the tool rightly refuses 0; ask for a number from 1 to 3999.',
    ),
    diagnosis(
      'city_timezone',
      'is ambiguous',
      'input',
      'Several places are called Springfield: the caller must say which country or state it means.',
    ),
    ...calls({
      tool: 'sign_message',
      first: '/sign the message "([^"]+)"/',
      result: '/"signature":"([0-9a-f]+)"/',
      answer: 'The signature of "{{first.1}}" is {{user.1}}.',
      input: { message: '{{first.1}}' },
    }),
    ...calls({
      tool: 'stock_quote',
      first: '/price of the stock ([A-Z]+)/',
      result: '/"price":([\\d.]+)/',
      answer: '{{first.1}} trades at {{user.1}}.',
      input: { symbol: '{{first.1}}' },
    }),
    ...calls({
      tool: 'fx_rate',
      first: '/exchange rate of the currency ([A-Z]+)/',
      result: '/"rate":([\\d.]+)/',
      answer: 'One {{first.1}} is {{user.1}} US dollars.',
      input: { currency: '{{first.1}}' },
    }),
    ...calls({
      tool: 'roman_numeral',
      first: '/write (\\d+) in roman numerals/',
      result: '/"roman":"([A-Z]+)"/',
      answer: '{{first.1}} is {{user.1}}.',
      input: { number: 0 },
    }),
    // five calls in one turn, then an answer that reports what came back
    {
      name: 'city_timezone: answer',
      match: { purpose: 'task.turn', first: 'Paris, Oslo, Lima, Timbuktu and Springfield', user: '/Call city_timezone differently/' },
      responses: [{ text: 'Paris, Oslo, Lima and Timbuktu have their time zones; Springfield is ambiguous, so say which one you mean.' }],
    },
    {
      name: 'city_timezone: five calls',
      match: {
        purpose: 'task.turn',
        tool: 'city_timezone',
        first: '/time zones are the cities (\\w+), (\\w+), (\\w+), (\\w+) and (\\w+) in/',
      },
      responses: [
        {
          content: [1, 2, 3, 4, 5].map((i) => ({
            type: 'tool_use',
            name: 'city_timezone',
            input: { city: `{{first.${i}}}` },
          })),
        },
      ],
    },
    {
      name: 'city_timezone: the rewrite',
      match: { purpose: 'improve.rewrite', user: '/^Tool: city_timezone v\\d+/m' },
      responses: [
        {
          tool_use: {
            name: 'submit_rewrite',
            input: {
              diagnosis: 'Cities off the hot list paid for a scan of the whole gazetteer; one index answers every city at once.',
              source: tzRewrite,
              tests: tzRewriteTests,
            },
          },
        },
      ],
    },
  ],
};

// ---------------------------------------------------------------------------------------------

interface ModelRequest {
  messages: { role: string; content: string | Array<{ type: string; content?: string; is_error?: boolean }> }[];
}
interface Row {
  idempotency_key: string;
  version: number;
  success: boolean;
}

describe('self-repair: escalations, transient retries, the caller’s mistakes and the evaluator’s trigger', () => {
  let h: Harness;
  let n = 0;
  const forge = (...args: string[]) => harnessCli(h, { user: 'tester', timeoutMs: 120_000 })(...args);
  const saved = Object.fromEntries([SECRET_VAR, STOCK_FEED, FX_FEED].map((k) => [k, process.env[k]]));

  const start = (task: string) =>
    h.client.workflow.start('taskWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId: `self-repair-${++n}-${Date.now()}`,
      args: [{ task, sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
    });

  const invocations = async (workflowId: string) => [
    ...(await h.db.sql<Row[]>`
      select idempotency_key, version, success from invocations where workflow_id = ${workflowId} order by id`),
  ];
  const audited = async (workflowId: string) =>
    (
      await h.db.sql<{ idempotency_key: string; kind: string }[]>`
        select idempotency_key, kind from audit_log where workflow_id = ${workflowId} order by id`
    ).map((r) => `${r.kind} ${r.idempotency_key.replace(`${workflowId}:`, '')}`);
  const keys = (rows: Row[], workflowId: string) => rows.map((r) => `${r.idempotency_key.replace(`${workflowId}:`, '')} ${r.success}`);

  async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = await probe();
      if (got !== undefined) return got;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(100);
    }
  }

  const pendingApproval = (workflowId: string) =>
    waitFor(`an approval of ${workflowId}`, async () => {
      const [row] = await h.db.sql<{ id: string; kind: string; tool: string | null; summary: string }[]>`
        select id, kind, tool, summary from approvals where workflow_id = ${workflowId} and status = 'pending'`;
      return row ? { ...row } : undefined;
    });

  /** The tool_results the model read on turn 2 of this task. */
  function secondTurnResults(task: string) {
    const asked = h.model.requests.filter((r) => {
      const body = r.body as ModelRequest | undefined;
      const first = body?.messages?.[0]?.content;
      return (
        r.headers['x-forge-purpose'] === 'task.turn' && typeof first === 'string' && first.includes(task) && body!.messages.length === 3
      );
    });
    assert.ok(asked.length, `the model was asked turn 2 of ${task}`);
    const last = (asked[asked.length - 1]!.body as ModelRequest).messages[2]!;
    return typeof last.content === 'string' ? [] : last.content.filter((b) => b.type === 'tool_result');
  }

  before(async () => {
    for (const k of Object.keys(saved)) delete process.env[k];
    h = await startHarness({ scenarios: [scenario] });
    const registry = createRegistry({ sql: h.db.sql, root: path.join(h.home, 'tools') });
    for (const t of TOOLS) {
      await registry.registerVersion({
        name: t.name,
        source: t.source,
        tests: t.tests ?? '',
        manifest: {
          description: t.description,
          sideEffect: 'read',
          destructive: false,
          permissions: { network: [], env: t.env },
          inputSchema: t.input,
          outputSchema: { type: 'object' },
        },
        createdBy: 'human',
        idempotencyKey: `self-repair:${t.name}`,
      });
    }
  });

  after(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await h?.close();
  });

  it('escalates a failure only a person can fix: rejected, the task fails and says it was escalated', async () => {
    const handle = await start(SIGN('ship it'));
    const approval = await pendingApproval(handle.workflowId);
    assert.deepEqual([approval.kind, approval.tool], ['escalation', 'sign_message']);
    assert.match(approval.summary, new RegExp(`^sign_message v1 failed and could not be repaired: ${SECRET_VAR} is not set`));
    assert.match(
      approval.summary,
      /diagnosis: FORGE_TEST_SIGNING_SECRET is not set on the worker that runs sign_message: a person must configure/,
    );
    assert.match(approval.summary, /Approve to retry the call once \(after fixing the cause\), reject to go on without it\./);

    const rejected = await forge('reject', approval.id);
    assert.equal(rejected.code, 0, rejected.stderr);
    const result = (await handle.result()) as TaskResult;
    assert.equal(result.status, 'failed', result.answer);
    assert.match(
      result.answer,
      /^I could not do it: the call failed: FORGE_TEST_SIGNING_SECRET is not set[^\n]*Diagnosis: FORGE_TEST_SIGNING_SECRET is not set on the worker/,
    );
    assert.match(
      result.answer,
      new RegExp(`It was escalated to a person \\(approval ${approval.id.replace(/\./g, '\\.')}\\): tester declined to retry it\\.$`),
    );

    const [call] = result.calls;
    assert.deepEqual([result.calls.length, call!.tool, call!.status, call!.version], [1, 'sign_message', 'failed', 1]);
    assert.deepEqual(call!.recovery, {
      retries: 0,
      diagnosis: {
        atFault: 'environment',
        fixable: false,
        diagnosis: `${SECRET_VAR} is not set on the worker that runs sign_message: a person must configure the signing secret; no rewrite can supply it.`,
      },
      escalation: { approvalId: approval.id, decision: 'declined' },
    });
    const [row] = await h.db.sql<{ kind: string; status: string; decided_by: string }[]>`
      select kind, status, decided_by from approvals where id = ${approval.id}`;
    assert.deepEqual({ ...row }, { kind: 'escalation', status: 'rejected', decided_by: 'tester' });
    // One call, metered and audited once: no retry (not transient), no repair, no re-run.
    assert.deepEqual(keys(await invocations(handle.workflowId), handle.workflowId), ['call:1.1 false']);
    assert.deepEqual(await audited(handle.workflowId), ['tool_call call:1.1']);
    const [improves] = await h.db.sql<{ n: number }[]>`select count(*)::int as n from improve_runs where tool = 'sign_message'`;
    assert.equal(improves!.n, 0, 'an environment fault starts no improve cycle');
  });

  it('retries an escalated call once when the person fixes the cause and approves', async () => {
    const handle = await start(SIGN('hold it'));
    const approval = await pendingApproval(handle.workflowId);
    assert.equal(approval.kind, 'escalation');
    // The person does what the diagnosis says, then approves the retry.
    process.env[SECRET_VAR] = 'correct horse battery staple';
    const approved = await forge('approve', approval.id);
    assert.equal(approved.code, 0, approved.stderr);
    const result = (await handle.result()) as TaskResult;

    const signature = createHmac('sha256', 'correct horse battery staple').update('hold it').digest('hex');
    assert.equal(result.status, 'completed', result.answer);
    assert.equal(result.answer, `The signature of "hold it" is ${signature}.`);
    const [call] = result.calls;
    assert.deepEqual([call!.status, call!.version, call!.output], ['succeeded', 1, { signature }]);
    assert.deepEqual(
      [call!.recovery?.retries, call!.recovery?.diagnosis?.atFault, call!.recovery?.repair, call!.recovery?.escalation],
      [0, 'environment', undefined, { approvalId: approval.id, decision: 'retry' }],
    );
    const [row] = await h.db.sql<{ kind: string; status: string }[]>`select kind, status from approvals where id = ${approval.id}`;
    assert.deepEqual({ ...row }, { kind: 'escalation', status: 'approved' });
    // The retry is a call of its own, keyed <wf>:call:<turn>.<n>.escalated.
    assert.deepEqual(keys(await invocations(handle.workflowId), handle.workflowId), ['call:1.1 false', 'call:1.1.escalated true']);
    assert.deepEqual(await audited(handle.workflowId), ['tool_call call:1.1', 'tool_call call:1.1.escalated']);
    const [result2] = secondTurnResults(SIGN('hold it'));
    assert.match(result2!.content!, /\(sign_message failed, was escalated to tester, and succeeded on the retry they approved\.\)$/);
    assert.equal(result2!.is_error, undefined);
  });

  it('retries a transient failure 3 times with backoff, then diagnoses and escalates it', async () => {
    const handle = await start(STOCK_TASK);
    const started = Date.now();
    const approval = await pendingApproval(handle.workflowId);
    // 1 + 2 + 4 s of backoff before the diagnosis (harness.policy.improve.transientRetries = 3).
    assert.ok(Date.now() - started >= 7_000, `escalated after ${Date.now() - started} ms`);
    assert.deepEqual([approval.kind, approval.tool], ['escalation', 'stock_quote']);
    assert.match(approval.summary, /the quotes feed answered 503 Service Unavailable — diagnosis: The quotes feed is down \(503\)/);
    assert.deepEqual(keys(await invocations(handle.workflowId), handle.workflowId), [
      'call:1.1 false',
      'call:1.1.retry1 false',
      'call:1.1.retry2 false',
      'call:1.1.retry3 false',
    ]);
    await handle.executeUpdate(decideApprovalUpdate, { args: [{ approvalId: approval.id, approve: false, by: 'tester' }] });

    const result = (await handle.result()) as TaskResult;
    assert.equal(result.status, 'failed', result.answer);
    assert.match(result.answer, /the quotes feed answered 503 Service Unavailable\. Diagnosis: The quotes feed is down/);
    assert.match(result.answer, /It was escalated to a person \(approval [^)]+\): tester declined to retry it\.$/);
    const [call] = result.calls;
    assert.deepEqual(
      [call!.status, call!.recovery?.retries, call!.recovery?.diagnosis?.atFault, call!.recovery?.escalation?.decision],
      ['failed', 3, 'environment', 'declined'],
    );
    const steps = await h.db.sql<
      { step: string }[]
    >`select step from task_steps where workflow_id = ${handle.workflowId} and step like 'diagnosis-%'`;
    assert.deepEqual(
      steps.map((s) => s.step),
      ['diagnosis-1.1'],
    );
    assert.deepEqual(await audited(handle.workflowId), [
      'tool_call call:1.1',
      'tool_call call:1.1.retry1',
      'tool_call call:1.1.retry2',
      'tool_call call:1.1.retry3',
    ]);
  });

  it('retries a transient failure and succeeds once the feed is back, without a diagnosis', async () => {
    const handle = await start(FX_TASK);
    // The feed comes back while the task waits to retry.
    await waitFor('the first failed call', async () => ((await invocations(handle.workflowId)).length ? true : undefined));
    process.env[FX_FEED] = JSON.stringify({ EUR: 1.08, GBP: 1.27 });
    const result = (await handle.result()) as TaskResult;

    assert.equal(result.status, 'completed', result.answer);
    assert.equal(result.answer, 'One EUR is 1.08 US dollars.');
    const [call] = result.calls;
    assert.deepEqual([call!.status, call!.output], ['succeeded', { currency: 'EUR', rate: 1.08 }]);
    const retries = call!.recovery!.retries;
    assert.ok(retries >= 1 && retries <= 3, `retried ${retries} times`);
    assert.deepEqual(Object.keys(call!.recovery!), ['retries'], 'no diagnosis, repair or escalation');
    // Each retry is metered under its own key; only the last succeeded.
    assert.deepEqual(keys(await invocations(handle.workflowId), handle.workflowId), [
      'call:1.1 false',
      ...Array.from({ length: retries }, (_, i) => `call:1.1.retry${i + 1} ${i + 1 === retries}`),
    ]);
    const [toolResult] = secondTurnResults(FX_TASK);
    assert.equal(
      toolResult!.content,
      `{"currency":"EUR","rate":1.08}\n\n(fx_rate succeeded after ${retries} retr${retries === 1 ? 'y' : 'ies'}.)`,
    );
    const [approvals] = await h.db.sql<{ n: number }[]>`select count(*)::int as n from approvals where workflow_id = ${handle.workflowId}`;
    assert.equal(approvals!.n, 0);
  });

  it('tells the model to call differently when the input is at fault: no repair, no escalation', async () => {
    const handle = await start(ROMAN_TASK);
    const result = (await handle.result()) as TaskResult;
    assert.equal(result.status, 'failed', 'the call the task needed failed');
    assert.equal(
      result.answer,
      'I could not do it: the call failed: 0 cannot be written in roman numerals: they run from 1 to 3999. Diagnosis: Roman numerals have no zero: the tool rightly refuses 0; ask for a number from 1 to 3999.',
    );
    const [call] = result.calls;
    assert.deepEqual(call!.recovery, {
      retries: 0,
      diagnosis: {
        atFault: 'input',
        fixable: false,
        diagnosis: 'Roman numerals have no zero: the tool rightly refuses 0; ask for a number from 1 to 3999.',
      },
    });
    const [toolResult] = secondTurnResults(ROMAN_TASK);
    assert.equal(toolResult!.is_error, true);
    assert.match(toolResult!.content!, /Call roman_numeral differently, or tell the user what it cannot do\.$/);
    assert.deepEqual(keys(await invocations(handle.workflowId), handle.workflowId), ['call:1.1 false']);
    const [approvals] = await h.db.sql<{ n: number }[]>`select count(*)::int as n from approvals where workflow_id = ${handle.workflowId}`;
    assert.equal(approvals!.n, 0, 'nothing was escalated');
    await assert.rejects(h.client.workflow.getHandle('improve-roman_numeral').describe(), /not found/i, 'no improve cycle was started');
  });

  it('starts the tool’s improve cycle when the evaluator reads it below the threshold after its 5th call', async () => {
    const handle = await start(TZ_TASK);
    const result = (await handle.result()) as TaskResult;
    assert.equal(
      result.answer,
      'Paris, Oslo, Lima and Timbuktu have their time zones; Springfield is ambiguous, so say which one you mean.',
    );
    assert.deepEqual(
      result.calls.map((c) => [c.input, c.status, c.recovery?.diagnosis?.atFault]),
      [
        [{ city: 'Paris' }, 'succeeded', undefined],
        [{ city: 'Oslo' }, 'succeeded', undefined],
        [{ city: 'Lima' }, 'succeeded', undefined],
        [{ city: 'Timbuktu' }, 'succeeded', undefined],
        [{ city: 'Springfield' }, 'failed', 'input'],
      ],
    );
    // 4 of 5 succeeded (80 %: the trust ladder does not quarantine it), but two calls took the slow
    // path (10 s): slow on average and inconsistent, the score falls under 0.6.
    const latencies = await h.db.sql<{ latency_ms: number }[]>`select latency_ms from invocations where workflow_id = ${handle.workflowId}`;
    const [tool] = await h.db.sql<{ status: string }[]>`select status from tools where name = 'city_timezone'`;
    assert.equal(tool!.status, 'active', `not quarantined; latencies ${latencies.map((l) => l.latency_ms).join(', ')} ms`);

    // The cycle outlives the task (an abandoned child): its ledger row says the evaluator asked.
    const improve = h.client.workflow.getHandle('improve-city_timezone');
    const described = await improve.describe();
    assert.equal(described.type, 'improveWorkflow');
    assert.deepEqual(described.searchAttributes.ForgeCycleKind, ['improve']);
    assert.deepEqual(described.searchAttributes.ForgeToolName, ['city_timezone']);
    assert.equal(described.parentExecution?.workflowId, handle.workflowId, 'the task started it');
    const outcome = (await improve.result()) as ImproveOutcome;
    const [run] = await h.db.sql<{ trigger: string; status: string; from_version: number }[]>`
      select trigger, status, from_version from improve_runs where tool = 'city_timezone'`;
    assert.deepEqual([run!.trigger, run!.from_version, run!.status], ['evaluator', 1, outcome.status]);
    // The rewriter was told why: the evaluator's reason.
    const asked = h.model.requests.filter((r) => r.headers['x-forge-purpose'] === 'improve.rewrite');
    assert.equal(asked.length, 1);
    const prompt = JSON.stringify(asked[0]!.body);
    assert.match(prompt, /Why it is being improved: (?:Slow \(avg \d+ ms|Inconsistent latency)/, prompt.slice(0, 4000));
    // Springfield's failure was the caller's (diagnosed 'input'): no case the rewrite must pass. The
    // rewrite keeps every recorded answer (the replays) and is faster: the gate passes and v2 is current.
    assert.equal(outcome.status, 'promoted', outcome.reason);
    assert.deepEqual([outcome.fromVersion, outcome.toVersion], [1, 2]);
    assert.ok(!outcome.gate?.cases.some((c) => c.kind === 'regression'), 'a failure diagnosed as the caller’s is no regression case');
    assert.ok(outcome.gate?.cases.some((c) => c.kind === 'replay' && c.pass));
  });
});

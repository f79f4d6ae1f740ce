/**
 * Forge's own checks (the forge-checks verification stage) in the real Docker sandbox: tools whose
 * own tests pass still fail when a generated input crashes them or breaks their output schema, and
 * network tools that ignore Retry-After, retry without bound or swallow a 5xx fail the fault checks
 * while a well-behaved one passes; a forge repairs on what the checks found.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import type { ForgeOutcome } from '../../domain/forge.ts';
import { dockerClient } from '../../infra/docker.ts';
import { ensureSandboxImage } from '../../infra/sandbox-image.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { config } from '../../services/config.ts';
import { createSandbox, reapOrphans, type Sandbox, SandboxCancelledError } from '../../services/sandbox/index.ts';
import { forgeChecksStage, formatForRepair, verifyTool } from '../../services/sandbox/stages/index.ts';
import type { SandboxBackend } from '../../services/sandbox/types.ts';
import { forgeProgressQuery } from '../../workflows/definitions.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { until } from '../helpers/wait.ts';

const cfg = config();
const image = cfg.FORGE_SANDBOX_IMAGE;
let docker: Docker;
let sandbox: Sandbox;

before(async () => {
  docker = dockerClient(cfg);
  await reapOrphans(docker);
  await ensureSandboxImage(docker, { tag: image });
  sandbox = createSandbox({ docker, image, poolSize: 1 });
});

after(async () => {
  await sandbox.close();
});

// ---------------------------------------------------------------------------------------------
// A text tool whose own tests only try the happy path

const textTool = (o: { output: string; body: string }) => `import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

export const manifest = {
  name: 'first_word',
  description: 'The first word of a text.',
  sideEffect: 'read',
  destructive: false,
  permissions: { network: [], env: [] },
  input: z.object({ text: z.string().max(1000) }).meta({ examples: [{ text: 'hello world' }] }),
  output: ${o.output},
};

export async function run(input: { text: string }, _ctx: ToolContext) {
${o.body}
}
`;

const textTests = `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testContext } from '@forge/testkit';
import { run } from './tool.ts';

test('takes the first word', async () => {
  const out = await run({ text: 'hello world' }, testContext());
  assert.equal(out.word, 'hello');
});
`;

/** Crashes on a text without words: words[0] is undefined. */
const crashOnEmpty = textTool({
  output: 'z.object({ word: z.string(), length: z.number().int().min(0) })',
  body: `  const words = input.text.split(/\\s+/).filter(Boolean);
  const word = words[0]!;
  return { word, length: word.length };`,
});

/** Returns an empty word for a text without words, which its own output schema does not allow. */
const emptyWord = textTool({
  output: 'z.object({ word: z.string().min(1) })',
  body: `  return { word: input.text.trim().split(/\\s+/)[0] ?? '' };`,
});

/** A banner of the word repeated to 20 characters: forever when there is no word. */
const loopsOnEmpty = textTool({
  output: 'z.object({ word: z.string(), banner: z.string() })',
  body: `  const word = input.text.trim().split(/\\s+/)[0] ?? '';
  let banner = word;
  while (banner.length < 20) banner += word;
  return { word, banner };`,
});

/** Says what is wrong with a text without words. */
const cleanRefusal = textTool({
  output: 'z.object({ word: z.string().min(1) })',
  body: `  const word = input.text.trim().split(/\\s+/)[0];
  if (!word) throw new Error('the text has no words: give a text with at least one word');
  return { word };`,
});

// ---------------------------------------------------------------------------------------------
// A tool for an API, with four ways of meeting its failures

const HOST = 'api.quotes.example';
const quoteSpec = {
  baseUrl: `https://${HOST}`,
  auth: { kind: 'bearer', envVar: 'QUOTES_TOKEN' },
  endpoints: [
    {
      id: 'quote',
      method: 'GET',
      path: '/v1/quote/{symbol}',
      safeRead: true,
      response: { type: 'object', properties: { symbol: { type: 'string' }, price: { type: 'number' } }, required: ['symbol', 'price'] },
      example: { symbol: 'ACME', price: 12.5 },
    },
  ],
};

const quoteTool = (get: string) => `import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

export const manifest = {
  name: 'stock_quote',
  description: 'The latest price of a stock.',
  sideEffect: 'read',
  destructive: false,
  permissions: { network: ['${HOST}'], env: ['QUOTES_TOKEN'] },
  input: z.object({ symbol: z.string().regex(/^[A-Z]{1,5}$/) }).meta({ examples: [{ symbol: 'ACME' }] }),
  output: z.object({ symbol: z.string(), price: z.number() }),
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The wait a 429 asks for, in ms (Retry-After's seconds), else a short backoff. */
function retryAfterMs(res: Response, attempt: number): number {
  const header = res.headers.get('retry-after');
  const seconds = header === null ? Number.NaN : Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, 5) * 1000 : 100 * attempt;
}

function parse(text: string): { symbol: string; price: number } {
  try {
    return JSON.parse(text) as { symbol: string; price: number };
  } catch {
    throw new Error('the quotes API answered malformed JSON');
  }
}

${get}

export async function run(input: { symbol: string }, ctx: ToolContext) {
  const token = ctx.env.QUOTES_TOKEN;
  if (!token) throw new Error('QUOTES_TOKEN is not set');
  return quote(\`https://${HOST}/v1/quote/\${input.symbol}\`, { headers: { authorization: \`Bearer \${token}\` } }, ctx);
}
`;

const wellBehaved = quoteTool(`async function quote(url: string, init: RequestInit, ctx: ToolContext) {
  for (let attempt = 1; ; attempt++) {
    const res = await ctx.fetch(url, init);
    if ((res.status === 429 || res.status >= 500) && attempt < 3) {
      await sleep(retryAfterMs(res, attempt));
      continue;
    }
    if (!res.ok) throw new Error(\`the quotes API answered \${res.status} after \${attempt} attempt(s)\`);
    const body = parse(await res.text());
    return { symbol: body.symbol, price: body.price };
  }
}`);

const ignoresRetryAfter = quoteTool(`async function quote(url: string, init: RequestInit, ctx: ToolContext) {
  for (let attempt = 1; ; attempt++) {
    const res = await ctx.fetch(url, init);
    if ((res.status === 429 || res.status >= 500) && attempt < 3) {
      await sleep(20 * attempt);
      continue;
    }
    if (!res.ok) throw new Error(\`the quotes API answered \${res.status} after \${attempt} attempt(s)\`);
    const body = parse(await res.text());
    return { symbol: body.symbol, price: body.price };
  }
}`);

const retriesForever = quoteTool(`async function quote(url: string, init: RequestInit, ctx: ToolContext) {
  for (let attempt = 1; ; attempt++) {
    const res = await ctx.fetch(url, init);
    if (res.status === 429 || res.status >= 500) {
      await sleep(res.status === 429 ? retryAfterMs(res, attempt) : 50);
      continue;
    }
    if (!res.ok) throw new Error(\`the quotes API answered \${res.status}\`);
    const body = parse(await res.text());
    return { symbol: body.symbol, price: body.price };
  }
}`);

const swallows5xx = quoteTool(`async function quote(url: string, init: RequestInit, ctx: ToolContext) {
  for (let attempt = 1; ; attempt++) {
    const res = await ctx.fetch(url, init);
    if (res.status === 429 && attempt < 3) {
      await sleep(retryAfterMs(res, attempt));
      continue;
    }
    if (res.status >= 500) return { symbol: url.split('/').pop() ?? '', price: 0 };
    if (!res.ok) throw new Error(\`the quotes API answered \${res.status}\`);
    const body = parse(await res.text());
    return { symbol: body.symbol, price: body.price };
  }
}`);

const quoteTests = `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testContext } from '@forge/testkit';
import { run } from './tool.ts';

test('returns the price the API reports', async () => {
  const out = await run({ symbol: 'ACME' }, testContext({ env: { QUOTES_TOKEN: 't' } }));
  assert.deepEqual(out, { symbol: 'ACME', price: 12.5 });
});
`;

const files = (source: string, tests: string, apiSpec?: unknown) => ({
  'tool.ts': source,
  'tool.test.ts': tests,
  ...(apiSpec ? { 'api-spec.json': JSON.stringify(apiSpec) } : {}),
});

async function verify(source: string, tests: string, apiSpec?: unknown) {
  const report = await verifyTool({ files: files(source, tests, apiSpec) }, sandbox);
  const [st, mock, checks, live] = report.stages;
  assert.equal(st?.status, 'passed', formatForRepair(report));
  assert.equal(mock?.status, 'passed', `the tool's own tests pass: ${formatForRepair(report)}`);
  assert.equal(checks?.stage, 'forge-checks');
  return { report, checks: checks!, live: live! };
}

const failing = (checks: { tests?: Array<{ name: string; passed: boolean; error?: string }> }) =>
  (checks.tests ?? []).filter((t) => !t.passed);

describe('forge-checks: inputs generated from the schema', () => {
  it('fails a tool that crashes on an empty string, though its own tests pass, naming the input', async () => {
    const { report, checks, live } = await verify(crashOnEmpty, textTests);
    assert.equal(report.passed, false);
    assert.equal(checks.status, 'failed');
    assert.match(checks.reason!, /of Forge's own checks failed: input: required fields only[^{]*\{"text":""\} → it crashed with TypeError/);
    const crash = failing(checks).find((t) => t.name.startsWith('input: required fields only'));
    assert.match(
      crash?.error ?? '',
      /^with input \{"text":""\}: it crashed with TypeError: Cannot read properties of undefined \(reading 'length'\)/,
    );
    assert.ok(
      checks.tests?.some((t) => t.name === "input: the schema's example" && t.passed),
      'the example itself is fine',
    );
    assert.deepEqual(live, { stage: 'live', status: 'skipped', reason: 'not run: the forge-checks stage failed', durationMs: 0 });
    const text = formatForRepair(report);
    assert.match(text, /VERIFICATION FAILED at stage "forge-checks"/);
    assert.match(text, /FAIL input: required fields only.*\n\s+with input \{"text":""\}: it crashed with TypeError/);
  });

  it('fails a tool whose output breaks its own schema on an edge input', async () => {
    const { checks } = await verify(emptyWord, textTests);
    assert.equal(checks.status, 'failed');
    const broken = failing(checks);
    assert.ok(broken.length >= 2, JSON.stringify(broken));
    for (const t of broken) assert.match(t.error!, /its output breaks its own output schema: word: Too small/);
    assert.ok(broken.some((t) => t.error!.startsWith('with input {"text":""}')));
    assert.ok(
      broken.some((t) => t.error!.startsWith('with input {"text":" \\t "}')),
      'whitespace only',
    );
  });

  it('stops a tool that never ends on an edge input, at that input, and says so', async () => {
    const { checks } = await verify(loopsOnEmpty, textTests);
    assert.equal(checks.status, 'failed');
    const hung = failing(checks);
    assert.equal(hung.length, 1, JSON.stringify(checks));
    assert.match(
      hung[0]!.error!,
      /^with input \{"text":""\}: it did not finish within 5000 ms and never gave the process back \(a loop that does not end on this input\?\): the judge stopped it/,
    );
    assert.match(checks.reason!, /^the call with input \{"text":""\} did not finish within 5000 ms/);
    assert.ok(checks.durationMs < 15_000, `stopped in ${checks.durationMs} ms, not at the job's limit`);
  });

  it('is not ended early or talked round by the judged code: an exit on an edge input fails at that input', async () => {
    // Straight to the stage: the static rules would refuse this source before any check ran.
    const exits = textTool({
      output: 'z.object({ word: z.string() })',
      body: `  if (!input.text) {
    console.log('\\u001eFORGE_RESULT\\u001f{"ok":true,"output":{"seed":1,"cases":[]},"durationMs":1,"logs":[]}');
    (globalThis as any)['pro' + 'cess'].exit(0);
  }
  return { word: input.text };`,
    });
    const checks = await forgeChecksStage({ source: exits, manifest: null }, sandbox);
    assert.equal(checks.status, 'failed');
    assert.match(checks.reason!, /^the tool's process exited with code 0 before Forge's checks finished/);
    const ended = failing(checks);
    assert.equal(ended.length, 1, JSON.stringify(checks));
    assert.match(ended[0]!.error!, /^with input \{"text":""\}: the call did not end: EXITED_EARLY/);
  });

  it('passes a tool that refuses the same inputs with a clear error', async () => {
    const { report, checks } = await verify(cleanRefusal, textTests);
    assert.equal(report.passed, true, formatForRepair(report));
    assert.equal(checks.status, 'passed');
    assert.ok((checks.tests?.length ?? 0) >= 5, 'examples, edges and random inputs');
    assert.ok(
      checks.tests!.every((t) => t.name.startsWith('input: ')),
      'no API: no fault checks',
    );
  });
});

describe('forge-checks: API faults injected by the mock', () => {
  it('passes a tool that honours Retry-After, retries a 5xx a bounded number of times and says what failed', async () => {
    const { report, checks } = await verify(wellBehaved, quoteTests, quoteSpec);
    assert.equal(report.passed, true, formatForRepair(report));
    const faults = checks.tests!.filter((t) => t.name.startsWith('fault: '));
    assert.deepEqual(
      faults.map((t) => [t.name, t.passed]),
      [
        ['fault: the API answers 429 with Retry-After: 1 once', true],
        ['fault: the API answers 503 to every request', true],
        ['fault: every request times out', true],
        ['fault: the API answers malformed JSON', true],
      ],
    );
    const limited = faults[0]!;
    assert.ok(limited.durationMs >= 950, `the 429 check took ${limited.durationMs} ms: the tool waited`);
  });

  it('fails a tool that ignores Retry-After, though its own tests pass', async () => {
    const { checks } = await verify(ignoresRetryAfter, quoteTests, quoteSpec);
    assert.equal(checks.status, 'failed');
    assert.deepEqual(
      failing(checks).map((t) => t.name),
      ['fault: the API answers 429 with Retry-After: 1 once'],
    );
    assert.match(
      failing(checks)[0]!.error!,
      /^with input \{"symbol":"ACME"\}: it retried \d+ ms after a 429 whose Retry-After asked for 1 s: wait the Retry-After header's seconds/,
    );
  });

  it('fails a tool that retries a 5xx without bound', async () => {
    const { checks } = await verify(retriesForever, quoteTests, quoteSpec);
    assert.equal(checks.status, 'failed');
    const fivexx = failing(checks).find((t) => t.name === 'fault: the API answers 503 to every request');
    assert.match(
      fivexx?.error ?? JSON.stringify(checks),
      /it kept retrying: Forge's mock refused it after 10 requests \(answers: 503, 503/,
    );
    assert.match(checks.reason!, /kept retrying/);
  });

  it('fails a tool that swallows a 5xx into made-up output', async () => {
    const { checks } = await verify(swallows5xx, quoteTests, quoteSpec);
    assert.equal(checks.status, 'failed');
    assert.deepEqual(
      failing(checks).map((t) => t.name),
      ['fault: the API answers 503 to every request'],
    );
    assert.match(failing(checks)[0]!.error!, /it returned output although every request was answered 503/);
  });
});

// ---------------------------------------------------------------------------------------------
// Alongside the earlier stages

/** Takes 4 s per call: Forge's checks, a call per generated input, run for half a minute. */
const slowTool = textTool({
  output: 'z.object({ word: z.string() })',
  body: `  await new Promise((resolve) => setTimeout(resolve, 4000));
  return { word: input.text.split(' ')[0] ?? '' };`,
});
const failingTests = `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from './tool.ts';

test('knows the tool is wrong', () => {
  assert.equal(typeof run, 'function');
  assert.fail('this tool is not finished');
});
`;

/** The sandbox, with each job's mode, signal and outcome kept: what ran, and how it ended. */
function recording(inner: Sandbox) {
  const jobs: Array<{ mode: string; signal?: AbortSignal; settled: Promise<unknown> }> = [];
  const backend: SandboxBackend = {
    runJob(job, opts) {
      const run = inner.runJob(job, opts);
      jobs.push({
        mode: job.mode,
        ...(opts?.signal ? { signal: opts.signal } : {}),
        settled: run.then(
          (r) => r,
          (err: unknown) => err,
        ),
      });
      return run;
    },
  };
  return { backend, jobs };
}

describe('forge-checks alongside the static and mock stages', () => {
  it('starts with the tests, yet a failing mock stage decides: the running checks are cancelled and reported not run', async () => {
    const { backend, jobs } = recording(sandbox);
    const report = await verifyTool({ files: files(slowTool, failingTests) }, backend);
    assert.deepEqual(
      report.stages.map((s) => `${s.stage}:${s.status}:${s.status === 'passed' ? '' : (s.reason ?? '').split(':')[0]}`),
      ['static:passed:', 'mock:failed:1 of 1 tests failed', 'forge-checks:skipped:not run', 'live:skipped:not run'],
    );
    assert.equal(report.stages[2]?.reason, 'not run: the mock stage failed');
    const checks = jobs.find((j) => j.mode === 'checks');
    assert.ok(checks, `the checks started alongside the tests (jobs: ${jobs.map((j) => j.mode).join(', ')})`);
    assert.equal(checks.signal?.aborted, true, 'the checks were cancelled, not waited for');
    assert.ok((await checks.settled) instanceof SandboxCancelledError, 'their container was killed');
    await sandbox.ready(); // the cancelled run let its container go: the pool fills again
  });

  it('is cancelled with the tests when the static stage fails', async () => {
    const { backend, jobs } = recording(sandbox);
    const report = await verifyTool(
      { files: files(slowTool.replace("input.text.split(' ')", "process.env.X!.split(' ')"), textTests) },
      backend,
    );
    assert.deepEqual(
      report.stages.map((s) => s.reason ?? s.status),
      [
        report.stages[0]!.reason,
        'not run: the static stage failed',
        'not run: the static stage failed',
        'not run: the static stage failed',
      ],
    );
    assert.equal(report.stages[0]?.status, 'failed');
    for (const job of jobs) {
      assert.equal(job.signal?.aborted, true, `the ${job.mode} run was cancelled`);
      const outcome = await job.settled;
      assert.ok(!(outcome && typeof outcome === 'object' && 'ok' in outcome), `the ${job.mode} run's result was never made`);
    }
    await sandbox.ready();
  });

  it('aborted mid-run, kills its container', async () => {
    await sandbox.ready();
    const controller = new AbortController();
    const { backend, jobs } = recording(sandbox);
    const run = forgeChecksStage({ source: slowTool, manifest: null, signal: controller.signal }, backend);
    await until('the checks run in a container', () => jobs.length > 0);
    controller.abort();
    await assert.rejects(run, SandboxCancelledError);
    await sandbox.ready();
  });
});

// ---------------------------------------------------------------------------------------------
// The forge cycle repairs on the checks' report

const spec = {
  name: 'first_word',
  description: 'The first word of a text.',
  docstring: 'Parameters: text. Returns { word, length }.',
  parameters: [{ name: 'text', type: 'string', description: 'the text', required: true }],
  returns: { type: 'object', description: '{ word: string, length: number }' },
  sideEffect: 'read',
  destructive: false,
  permissions: { network: [], env: [] },
};
const repaired = textTool({
  output: 'z.object({ word: z.string(), length: z.number().int().min(0) })',
  body: `  const word = input.text.split(/\\s+/).filter(Boolean)[0];
  if (word === undefined) throw new Error('the text has no words: give a text with at least one word');
  return { word, length: word.length };`,
});
const scenario: ScenarioInput = {
  name: 'forge-checks-repair',
  rules: [
    {
      name: 'spec',
      match: { purpose: 'forge.spec', user: '/<need>\\n[^\\n]*first word/i' },
      responses: [{ tool_use: { name: 'submit_spec', input: spec } }],
    },
    {
      name: 'tests',
      match: { purpose: 'forge.tests', user: '/^Tool: first_word$/m' },
      responses: [{ tool_use: { name: 'submit_tests', input: { tests: textTests } } }],
    },
    {
      name: 'implementation: crashes on a text without words',
      match: { purpose: 'forge.implementation', user: '/^Tool: first_word$/m' },
      responses: [{ tool_use: { name: 'submit_implementation', input: { source: crashOnEmpty } } }],
    },
    {
      name: 'repair: refuse a text without words',
      match: { purpose: 'forge.repair', user: '/^Tool: first_word$/m' },
      responses: [
        {
          tool_use: {
            name: 'submit_repair',
            input: {
              diagnosis: 'words[0] was undefined for a text without words; it is now refused with a clear error.',
              source: repaired,
            },
          },
        },
      ],
    },
  ],
};

describe('forging with Forge’s own checks', () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ scenarios: [scenario], env: { FORGE_POOL_SIZE: '1' } });
  });

  after(() => h.close());

  it('fails the first implementation at the forge-checks stage and registers the repair', async () => {
    const handle = await h.client.workflow.start('forgeWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId: `forge-checks-${Date.now()}`,
      args: [{ need: 'give the first word of a text', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
    });
    const outcome = (await handle.result()) as ForgeOutcome;
    assert.equal(outcome.status, 'registered', JSON.stringify(outcome).slice(0, 3000));
    const progress = await handle.query(forgeProgressQuery);
    assert.deepEqual(
      progress.attempts.map((a) => a.passed),
      [false, true],
    );
    assert.match(progress.attempts[0]!.summary, /VERIFICATION FAILED at stage "forge-checks"/);
    // The repair was asked with the checks' report: the input that crashed the tool, and how.
    const repairs = h.model.requests.filter((r) => r.headers['x-forge-purpose'] === 'forge.repair');
    assert.equal(repairs.length, 1);
    assert.match(JSON.stringify(repairs[0]!.body), /with input \{\\"text\\":\\"\\"\}: it crashed with TypeError/);
  });
});

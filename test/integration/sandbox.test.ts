/**
 * The sandbox as its callers use it, against the real Docker engine: the single-use warm
 * pool, the cold path, tool calls and test runs through the runner, the activities, and
 * a forged tool served over MCP stdio from its container.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { createSandboxActivities } from '../../activities/sandbox.ts';
import { dockerClient } from '../../infra/docker.ts';
import { ensureSandboxImage } from '../../infra/sandbox-image.ts';
import { NODE_PATH, type TestReport } from '../../runner/protocol.ts';
import { config } from '../../services/config.ts';
import { bundleToolModule } from '../../services/sandbox/bundle.ts';
import { LABEL_OWNER, LABEL_SANDBOX, OWNER } from '../../services/sandbox/container.ts';
import { ZOD_URL } from '../../services/sandbox/esbuild-plugins.ts';
import {
  createSandbox,
  DEFAULT_LIMITS,
  reapOrphans,
  type Sandbox,
  SandboxCancelledError,
  type SandboxJob,
} from '../../services/sandbox/index.ts';
import { openToolSession } from '../../services/sandbox/mcp.ts';
import { CHECKS_CPUS } from '../../services/sandbox/stages/checks.ts';

const cfg = config();
const image = cfg.FORGE_SANDBOX_IMAGE;
let docker: Docker;
let dir: string;
const sandboxes: Sandbox[] = [];

const TOOL_TS = `
import { z } from 'zod';
import type { ToolContext } from '@forge/tool';
export const manifest = {
  name: 'add_numbers',
  description: 'Adds two numbers.',
  sideEffect: 'read',
  permissions: { network: [], env: ['GREETING'] },
  input: z.object({ a: z.number(), b: z.number() }),
  output: z.object({ sum: z.number(), greeting: z.string().optional() }),
};
export async function run(input: { a: number; b: number }, ctx: ToolContext) {
  ctx.log.info('adding', { a: input.a, b: input.b });
  if (input.a < 0) return { sum: 'negative' };
  return { sum: input.a + input.b, greeting: ctx.env.GREETING };
}
`;

const TEST_TS = `
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { run } from './tool.ts';
const ctx = { env: {}, signal: new AbortController().signal, fetch, log: { debug() {}, info() {}, warn() {}, error() {} } } as never;
test('adds', async () => assert.equal((await run({ a: 1, b: 2 }, ctx)).sum, 3));
describe('edge cases', () => {
  test('adds zero', async () => assert.equal((await run({ a: 0, b: 0 }, ctx)).sum, 0));
  test('is wrong on purpose', async () => assert.equal((await run({ a: 2, b: 2 }, ctx)).sum, 5));
});
`;

const ECHO = `
const any = { safeParse: (v) => ({ success: true, data: v }) };
export const manifest = { name: 'echo', description: 'echo', permissions: { network: [], env: [] }, input: any, output: any };
export async function run(input) { return input; }`;
const echoJob = (input: unknown, extra: Partial<SandboxJob> = {}): SandboxJob => ({
  mode: 'call',
  files: { 'tool.mjs': ECHO },
  entry: 'tool.mjs',
  input,
  // Hand-written schemas: the judge cannot read them, so it checks only that the output is JSON.
  allowOpaqueSchemas: true,
  ...extra,
});

function track(s: Sandbox): Sandbox {
  sandboxes.push(s);
  return s;
}

async function exists(id: string): Promise<boolean> {
  try {
    await docker.getContainer(id).inspect();
    return true;
  } catch {
    return false;
  }
}

async function ourContainers(extraLabel?: string): Promise<Docker.ContainerInfo[]> {
  const label = [`${LABEL_SANDBOX}=1`, `${LABEL_OWNER}=${OWNER}`, ...(extraLabel ? [extraLabel] : [])];
  return docker.listContainers({ all: true, filters: { label } });
}

async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${what} did not happen within ${ms} ms`);
}

let toolBundle: string;

before(async () => {
  docker = dockerClient(cfg);
  await reapOrphans(docker);
  await ensureSandboxImage(docker, { tag: image });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-sandbox-test-'));
  fs.writeFileSync(path.join(dir, 'tool.ts'), TOOL_TS);
  fs.writeFileSync(path.join(dir, 'tool.test.ts'), TEST_TS);
  toolBundle = await bundleToolModule(path.join(dir, 'tool.ts'));
});

after(async () => {
  await Promise.all(sandboxes.map((s) => s.close()));
  fs.rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(
    (await ourContainers()).map((c) => c.Id),
    [],
    'no forge.sandbox container is left behind',
  );
});

describe('sandbox image', () => {
  it('is idempotent when present', async () => {
    const again = await ensureSandboxImage(docker, { tag: image });
    assert.equal(again.built, false, 'an unchanged image is not rebuilt');
    const info = await docker.getImage(image).inspect();
    assert.equal(info.Config.User, '10001:10001');
  });
});

describe('warm pool', () => {
  it('serves each job from a different container and destroys it afterwards', async () => {
    const pool = track(createSandbox({ docker, image, poolSize: 2 }));
    await pool.ready();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      await pool.ready();
      const r = await pool.runJob(echoJob({ i }));
      assert.equal(r.ok, true, r.reason);
      assert.deepEqual(r.output, { i });
      assert.equal(r.warm, true, 'served by a pre-started container');
      ids.push(r.containerId!);
    }
    assert.equal(new Set(ids).size, 3, 'no container serves two jobs');
    for (const id of ids) await eventually(`container ${id} to be removed`, async () => !(await exists(id)));
    await pool.close();
  });

  it('refills in the background after each job', async () => {
    const pool = track(createSandbox({ docker, image, poolSize: 2 }));
    await pool.ready();
    const before = (await ourContainers()).filter((c) => c.Labels['forge.job']?.startsWith('pool-')).map((c) => c.Id);
    await Promise.all([pool.runJob(echoJob(1)), pool.runJob(echoJob(2))]);
    assert.equal(pool.stats().warmJobs, 2);
    await pool.ready();
    assert.equal(pool.stats().idle, 2);
    const now = (await ourContainers()).filter((c) => c.Labels['forge.job']?.startsWith('pool-')).map((c) => c.Id);
    assert.ok(now.every((id) => !before.includes(id)) || now.length > 2, 'the pool holds fresh containers');
    await pool.close();
  });

  it('replaces an idle container that died', async () => {
    const pool = track(createSandbox({ docker, image, poolSize: 1 }));
    await pool.ready();
    const idle = (await ourContainers()).filter((c) => c.Labels['forge.job']?.startsWith('pool-'));
    assert.ok(idle.length >= 1);
    await Promise.all(idle.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    await eventually(
      'the pool to start a replacement',
      async () => pool.stats().idle === 1 && !(await ourContainers()).some((c) => idle.some((d) => d.Id === c.Id)),
    );
    const r = await pool.runJob(echoJob('after'));
    assert.equal(r.ok, true, r.reason);
    await pool.close();
  });

  it('takes the cold path when the pool is empty, disabled, or the job needs other limits', async () => {
    const pool = track(createSandbox({ docker, image, poolSize: 1 }));
    await pool.ready();
    const [a, b] = await Promise.all([pool.runJob(echoJob('a')), pool.runJob(echoJob('b'))]);
    assert.deepEqual([a.warm, b.warm].sort(), [false, true], 'one warm, one cold');
    assert.ok(a.ok && b.ok);
    await pool.ready();
    const bigger = await pool.runJob(echoJob('big', { limits: { memoryMb: 256 } }));
    assert.equal(bigger.warm, false, 'a job with other limits does not get a pool container');
    await pool.close();

    const cold = track(createSandbox({ docker, image, poolSize: 0 }));
    const r = await cold.runJob(echoJob('cold'));
    assert.equal(r.warm, false);
    assert.equal(r.ok, true);
    assert.ok((r.overheadMs ?? 0) > 0);
    await cold.close();
  });

  /** A job's command that prints the container's own view of its CPU quota (cgroup v2 or v1), at once or once it is `atLeast`. */
  const quotaJob = (cpus: number, atLeast?: number) => {
    const read = `const fs = require('node:fs');
const read = () => { try { const [q, p] = fs.readFileSync('/sys/fs/cgroup/cpu.max', 'utf8').trim().split(' '); return Number(q) / Number(p); }
  catch { return Number(fs.readFileSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us', 'utf8')) / Number(fs.readFileSync('/sys/fs/cgroup/cpu/cpu.cfs_period_us', 'utf8')); } };
const until = Date.now() + 5000;
const poll = () => { const cpus = read(); if (cpus >= ${atLeast ?? 0} || Date.now() > until) console.log(JSON.stringify({ cpus })); else setTimeout(poll, 20); };
poll();`;
    return { mode: 'exec' as const, files: {}, command: [NODE_PATH, '-e', read], limits: { cpus } };
  };

  it('serves a job that asks for more CPU from a warm container whose quota it raises, and one that asks for less from a warm one lowered first', async () => {
    const pool = track(createSandbox({ docker, image, poolSize: 1 }));
    await pool.ready();
    // Raised while the job is sent: read until it shows.
    const raised = await pool.runJob(quotaJob(1, 1));
    assert.equal(raised.ok, true, raised.reason);
    assert.equal(raised.warm, true, 'a pool container, not a cold start');
    assert.deepEqual(JSON.parse(raised.stdout), { cpus: 1 });
    await pool.ready();
    // Lowered before the job is sent: its first read already shows it.
    const less = await pool.runJob(quotaJob(0.25));
    assert.equal(less.ok, true, less.reason);
    assert.equal(less.warm, true, 'a pool container, not a cold start');
    assert.deepEqual(JSON.parse(less.stdout), { cpus: 0.25 }, 'a lower quota holds from the first instruction');
    await pool.close();
  });

  it('keeps two containers of a pool of four at a verification’s CPU, so its jobs need no quota change', async () => {
    const pool = track(createSandbox({ docker, image, poolSize: 4 }));
    await pool.ready();
    const idle = (await ourContainers()).filter((c) => c.Labels['forge.job']?.startsWith('pool-'));
    const quotas = await Promise.all(idle.map(async (c) => (await docker.getContainer(c.Id).inspect()).HostConfig.NanoCpus));
    assert.deepEqual(
      quotas.sort((a, b) => (a ?? 0) - (b ?? 0)),
      [5e8, 5e8, 1e9, 1e9],
    );
    // Both at once, as a verification's tests and checks: each on a container created with one CPU.
    const [tests, checks] = await Promise.all([pool.runJob(quotaJob(CHECKS_CPUS)), pool.runJob(quotaJob(CHECKS_CPUS))]);
    assert.deepEqual([JSON.parse(tests.stdout), JSON.parse(checks.stdout)], [{ cpus: 1 }, { cpus: 1 }]);
    assert.deepEqual([tests.warm, checks.warm], [true, true]);
    // A call at the default quota takes a container created with it.
    const call = await pool.runJob(quotaJob(DEFAULT_LIMITS.cpus));
    assert.deepEqual([call.warm, JSON.parse(call.stdout)], [true, { cpus: 0.5 }]);
    await pool.close();
  });
});

describe('jobs', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = track(createSandbox({ docker, image, poolSize: 2 }));
  });

  it('calls a bundled zod tool: validated input and output, declared env, logs', async () => {
    assert.ok(toolBundle.includes(`from "${ZOD_URL}"`), 'the tool imports the image’s zod');
    assert.ok(toolBundle.length < 20_000, `zod is not inlined (${toolBundle.length} bytes)`);
    const r = await sandbox.runJob({
      mode: 'call',
      files: { 'tool.mjs': toolBundle },
      entry: 'tool.mjs',
      input: { a: 2, b: 3 },
      env: { GREETING: 'hi', OTHER: 'x' },
    });
    assert.equal(r.ok, true, r.reason);
    assert.deepEqual(r.output, { sum: 5, greeting: 'hi' });
    assert.equal(r.logs?.[0]?.msg, 'adding');
    const bad = await sandbox.runJob({ mode: 'call', files: { 'tool.mjs': toolBundle }, entry: 'tool.mjs', input: { a: 'x' } });
    assert.equal(bad.error?.code, 'INPUT_INVALID');
    assert.match(bad.reason ?? '', /a: .*expected number/);
    const wrong = await sandbox.runJob({ mode: 'call', files: { 'tool.mjs': toolBundle }, entry: 'tool.mjs', input: { a: -1, b: 1 } });
    assert.equal(wrong.error?.code, 'OUTPUT_INVALID');
  });

  it('runs a node:test suite and reports each test', async () => {
    const tests = await bundleToolModule(path.join(dir, 'tool.test.ts'));
    const r = await sandbox.runJob({ mode: 'test', files: { 'tool.test.mjs': tests }, entry: 'tool.test.mjs' });
    const report = r.output as TestReport;
    assert.equal(r.ok, false, 'one test fails on purpose');
    assert.equal(report.total, 3);
    assert.equal(report.passed, 2);
    assert.equal(report.coverage, 2 / 3);
    const failed = report.tests.find((t) => !t.pass)!;
    assert.equal(failed.name, 'is wrong on purpose');
    assert.deepEqual(failed.path, ['edge cases']);
    assert.match(failed.error ?? '', /4 !== 5/);
    assert.match(r.reason ?? '', /1 of 3 tests failed/);
  });

  it('reports a test file that does not even load', async () => {
    const r = await sandbox.runJob({ mode: 'test', files: { 't.mjs': 'throw new Error("broken at import")' }, entry: 't.mjs' });
    assert.equal(r.ok, false);
    assert.match(JSON.stringify(r.output), /broken at import|t\.mjs/);
  });

  it('runs sandboxExec and sandboxRunTool as activities', async () => {
    const acts = createSandboxActivities(sandbox);
    const r = await acts.sandboxExec({ command: ['node', '-e', 'console.log(1+1)'] });
    assert.equal(r.stdout, '2\n');
    assert.equal(r.exitCode, 0);
    const t = await acts.sandboxRunTool({
      files: { 'tool.mjs': toolBundle },
      entry: 'tool.mjs',
      input: { a: 1, b: 1 },
      permissions: { network: [], env: [] },
      env: { GREETING: 'hidden' },
    });
    assert.deepEqual(t.output, { sum: 2 }, 'the approved permissions, not the manifest, decide which env is visible');
    await assert.rejects(acts.sandboxExec({ command: [] }), /invalid sandboxExec input/);
  });

  it('kills the container when the caller cancels', async () => {
    const controller = new AbortController();
    const job = sandbox.runJob(
      { mode: 'exec', files: {}, command: ['node', '-e', 'setInterval(() => {}, 1000)'], id: 'cancel-me' },
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 700);
    await assert.rejects(job, SandboxCancelledError);
    await eventually('the cancelled container to be removed', async () => (await ourContainers('forge.job=cancel-me')).length === 0);
  });

  // A container removed after its attach and before its start (a freeze killing sandboxes while the pool
  // refills) kept its attach connection open in dockerd, and that held the worker's process up after shutdown.
  it('a container removed before it starts fails its start and leaves no open connection to the engine', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/removed-before-start.ts', 'removed-before-start']);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const held = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await exited;
    clearTimeout(held);
    assert.match(out, /start failed: .*no such container/i);
    assert.equal(code, 0, `the process exits by itself once the start failed (killed after 60 s if not); it printed: ${out}`);
    assert.deepEqual(await ourContainers('forge.job=removed-before-start'), []);
  });
});

describe('MCP', () => {
  it('serves a forged tool over MCP stdio from its container (tools/list, tools/call)', async () => {
    const session = await openToolSession({
      docker,
      image,
      files: { 'tool.mjs': toolBundle },
      entry: 'tool.mjs',
      env: { GREETING: 'hello' },
    });
    try {
      const { tools } = await session.client.listTools();
      assert.equal(tools.length, 1);
      assert.equal(tools[0]!.name, 'add_numbers');
      assert.deepEqual(tools[0]!.inputSchema.required, ['a', 'b']);
      assert.equal(tools[0]!.outputSchema?.type, 'object');
      const ok = await session.client.callTool({ name: 'add_numbers', arguments: { a: 20, b: 22 } });
      assert.deepEqual(ok.structuredContent, { sum: 42, greeting: 'hello' });
      assert.ok(!ok.isError);
      const bad = await session.client.callTool({ name: 'add_numbers', arguments: { a: 'x', b: 1 } });
      assert.equal(bad.isError, true);
      const body = JSON.parse((bad.content as Array<{ text: string }>)[0]!.text) as { code: string; message: string };
      assert.equal(body.code, 'INPUT_INVALID');
    } finally {
      await session.close();
    }
    assert.equal(await exists(session.containerId), false);
  });

  it('runs every call in its own judged process, started ahead or, for overlapping calls, on demand', async () => {
    // Module state survives only within one process: a count above 1 would mean a process served two calls.
    fs.writeFileSync(
      path.join(dir, 'counter.ts'),
      `import { z } from 'zod';
let calls = 0;
export const manifest = {
  name: 'count_calls',
  description: 'Counts the calls its process has served.',
  sideEffect: 'read',
  permissions: { network: [], env: [] },
  input: z.object({ n: z.number() }),
  output: z.object({ n: z.number(), calls: z.number() }),
};
export async function run(input: { n: number }) {
  calls += 1;
  return { n: input.n, calls };
}
`,
    );
    const bundle = await bundleToolModule(path.join(dir, 'counter.ts'));
    const session = await openToolSession({ docker, image, files: { 'tool.mjs': bundle }, entry: 'tool.mjs' });
    const call = async (n: number) => (await session.client.callTool({ name: 'count_calls', arguments: { n } })).structuredContent;
    try {
      for (const n of [1, 2, 3]) assert.deepEqual(await call(n), { n, calls: 1 });
      assert.deepEqual(
        await Promise.all([call(4), call(5), call(6)]),
        [4, 5, 6].map((n) => ({ n, calls: 1 })),
      );
      assert.deepEqual(await call(7), { n: 7, calls: 1 });
    } finally {
      await session.close();
    }
  });
});

/**
 * Integrity, against the real Docker engine: the judged code cannot write its own verdict. Each
 * attack is made by a tool in a production call, by a test file (or the tool under test) in the
 * mock stage, or by a tool in the live stage, and each must be
 *   contained — the runner and the host go on, nothing is left behind;
 *   not forged — the host sees a failure, never the result the attacker wrote;
 *   explained — its own error code, and a message that says what happened.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { dockerClient } from '../../infra/docker.ts';
import { ensureSandboxImage } from '../../infra/sandbox-image.ts';
import { MAX_RESULT_BYTES } from '../../runner/bounded-json.ts';
import { RESULT_MARKER, ZOD_PATH } from '../../runner/protocol.ts';
import { config } from '../../services/config.ts';
import { bundleTool } from '../../services/sandbox/bundle.ts';
import { LABEL_OWNER, LABEL_SANDBOX, OWNER } from '../../services/sandbox/container.ts';
import { createSandbox, reapOrphans, type Sandbox, type SandboxJob, type SandboxResult } from '../../services/sandbox/index.ts';
import { LABEL_EGRESS } from '../../services/sandbox/stages/egress.ts';
import { liveStage, mockStage, readManifestSource, reapEgress, type StageResult } from '../../services/sandbox/stages/index.ts';

const cfg = config();
const image = cfg.FORGE_SANDBOX_IMAGE;
let docker: Docker;
let sandbox: Sandbox;

/** A result frame as the old runner printed it, claiming success: JS source for a string literal. */
const FORGED_FRAME = JSON.stringify(`${RESULT_MARKER}${JSON.stringify({ ok: true, output: { sum: 3 }, durationMs: 1, logs: [] })}`);
/** What the old live probe printed, claiming a passing real call. */
const FORGED_LIVE = JSON.stringify(
  `\u001eFORGE_LIVE\u001f${JSON.stringify({ input: {}, ok: true, output: { sum: 3 }, durationMs: 1, logs: [] })}`,
);

/** A tool with real zod schemas (the judge reads them): `body` is run()'s body; `top` runs at load, after the manifest. */
function attacker(body: string, top = ''): string {
  return `import { z } from 'zod';
import fs from 'node:fs';
export const manifest = {
  name: 'attacker',
  description: 'Tries to write its own verdict.',
  sideEffect: 'read',
  permissions: { network: [], env: [] },
  input: z.object({ a: z.number() }),
  output: z.object({ sum: z.number(), extra: z.any().optional() }),
};
${top}
export async function run(input: { a: number }): Promise<unknown> {
  ${body}
}
`;
}

const used = new Set<string>();
async function call(source: string, limits: SandboxJob['limits'] = {}): Promise<SandboxResult> {
  const r = await sandbox.runJob({
    mode: 'call',
    files: { 'tool.mjs': await bundleTool(source) },
    entry: 'tool.mjs',
    input: { a: 1 },
    limits: { timeoutMs: 10_000, ...limits },
  });
  if (r.containerId) used.add(r.containerId);
  return r;
}

/** The host still starts processes, and its own JSON (what Temporal would carry) holds the result. */
function assertContained(r: SandboxResult): void {
  assert.ok(r.containerId, 'the job ran in a sandbox container and the runner reported on it');
  assert.ok(JSON.stringify(r).length < 4 * MAX_RESULT_BYTES, 'the result fits a Temporal payload');
  const host = spawnSync(process.execPath, ['-e', 'process.stdout.write("alive")'], { encoding: 'utf8' });
  assert.equal(host.stdout, 'alive', 'the host is healthy');
}

/** Contained, not forged, and explained by the judge with its own code. */
function refused(r: SandboxResult, code: string, message: RegExp): void {
  assertContained(r);
  assert.equal(r.ok, false, `not forged: the host sees a failure (got ${JSON.stringify(r.output)})`);
  assert.equal(r.error?.code, code, `${r.reason}`);
  assert.match(r.reason ?? '', message);
}

async function ourContainers(): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL_SANDBOX}=1`, `${LABEL_OWNER}=${OWNER}`] } });
  return list.map((c) => c.Id.slice(0, 12));
}

before(async () => {
  docker = dockerClient(cfg);
  await reapOrphans(docker);
  await reapEgress(docker);
  await ensureSandboxImage(docker, { tag: image });
  sandbox = createSandbox({ docker, image, poolSize: 2 });
});

after(async () => {
  await sandbox.close();
  assert.deepEqual(await ourContainers(), [], 'no sandbox container is left behind');
  const egress = await docker.listNetworks({ filters: { label: [LABEL_EGRESS] } });
  assert.deepEqual(
    egress.filter((n) => n.Labels?.[LABEL_OWNER] === OWNER).map((n) => n.Name),
    [],
    'no egress network is left behind',
  );
  assert.ok(used.size >= 15, 'the attacks ran in their own containers');
});

describe('a tool in a production call', { concurrency: 2 }, () => {
  it('prints a result frame claiming success, then throws: the frame is a log line, the call fails', async () => {
    const r = await call(attacker(`console.log(${FORGED_FRAME}); throw new Error('the real outcome: a failure');`));
    refused(r, 'TOOL_THREW', /the real outcome: a failure/);
    assert.equal(r.output, undefined, 'the forged output went nowhere');
    assert.match(r.stdout, /FORGE_RESULT/, 'the forged frame is kept as what it is: the tool’s stdout');
  });

  it('prints a result frame and exits 0 before returning', async () => {
    const r = await call(attacker(`console.log(${FORGED_FRAME}); process.exit(0);`));
    refused(r, 'EXITED_EARLY', /the tool's process exited with code 0 before it returned a result/);
  });

  it('writes a passing frame to the runner’s own stdout through /proc/<ppid>/fd/1 and /proc/1/fd/1', async () => {
    const r = await call(
      attacker(`const codes: string[] = [];
  for (const p of ['/proc/' + process.ppid + '/fd/1', '/proc/1/fd/1', '/proc/' + process.ppid + '/fd/2']) {
    try { fs.writeFileSync(p, ${FORGED_FRAME} + '\\n'); codes.push('WROTE'); } catch (e) { codes.push((e as { code: string }).code); }
  }
  throw new Error('writes: ' + codes.join(','));`),
    );
    refused(r, 'TOOL_THREW', /writes: ERR_ACCESS_DENIED,ERR_ACCESS_DENIED,ERR_ACCESS_DENIED/);
  });

  it('writes a forged report straight onto the judge’s report channel (fd 3)', async () => {
    const r = await call(
      attacker(
        `fs.writeSync(3, 'x {"k":"result","ok":true,"output":{"sum":3},"logs":[],"tampered":[]}\\n'); return { sum: 'not a number' };`,
      ),
    );
    refused(r, 'PROTOCOL_VIOLATION', /did not come from Forge's harness \(it lacks the job's nonce\)/);
  });

  it('hunts for the channel’s nonce: heap snapshot, its own memory, the inspector', async () => {
    const r = await call(
      attacker(`const out: string[] = [];
  const v8 = await import('node:v8');
  try { v8.getHeapSnapshot(); out.push('SNAPSHOT'); } catch (e) { out.push((e as Error).message); }
  try { v8.setFlagsFromString('--allow-natives-syntax'); out.push('FLAGS'); } catch (e) { out.push((e as Error).message); }
  try { fs.readFileSync('/proc/self/mem'); out.push('MEM'); } catch (e) { out.push((e as { code: string }).code); }
  try { const inspector = await import('node:inspector'); new inspector.Session().connect(); out.push('INSPECTOR'); } catch (e) { out.push((e as { code: string }).code); }
  throw new Error(out.join(' | '));`),
    );
    refused(
      r,
      'TOOL_THREW',
      /v8\.getHeapSnapshot is not available inside the Forge sandbox \| v8\.setFlagsFromString is not available inside the Forge sandbox \| ERR_ACCESS_DENIED \| ERR_ACCESS_DENIED/,
    );
  });

  it('tries to leave the permission model: a child process, a worker, code built from a string', async () => {
    const r = await call(
      attacker(`const out: string[] = [];
  try { (await import('node:child_process')).execFileSync('/usr/bin/node', ['-e', '1']); out.push('SPAWNED'); } catch (e) { out.push((e as { code: string }).code); }
  try { new (await import('node:worker_threads')).Worker('1', { eval: true }); out.push('WORKER'); } catch (e) { out.push((e as { code: string }).code); }
  try { const { constructor: F } = () => 0; (F as FunctionConstructor)('return 1')(); out.push('EVAL'); } catch (e) { out.push((e as Error).name); }
  throw new Error(out.join(','));`),
    );
    refused(r, 'TOOL_THREW', /ERR_ACCESS_DENIED,ERR_ACCESS_DENIED,EvalError/);
  });

  it('patches Object.prototype.toJSON while it runs, so every report would serialize as a success', async () => {
    const r = await call(
      attacker(`(Object.prototype as { toJSON?: unknown }).toJSON = function () { return { sum: 3 }; }; return { sum: 'x' };`),
    );
    refused(r, 'GLOBALS_TAMPERED', /while it ran, changed built-in objects \(Object\.prototype\.toJSON\)/);
  });

  it('replaces JSON.stringify while it runs', async () => {
    const r = await call(
      attacker(
        `const real = JSON.stringify; JSON.stringify = ((_v: unknown) => real({ ok: true, output: { sum: 3 } })) as typeof JSON.stringify; return { sum: 'x' };`,
      ),
    );
    refused(r, 'GLOBALS_TAMPERED', /changed built-in objects \(JSON\.stringify\)/);
  });

  it('installs a `then` getter that rewrites the runner’s result object into a success', async () => {
    const r = await call(
      attacker(`Object.defineProperty(Object.prototype, 'then', {
    configurable: true,
    get() {
      const self = this as Record<string, unknown>;
      if (self && 'ok' in self && 'durationMs' in self && !self.forged) return (resolve: (v: unknown) => void) => resolve({ ...self, ok: true, error: undefined, output: { sum: 3 }, forged: true });
      return undefined;
    },
  });
  throw new Error('the real outcome: a failure');`),
    );
    refused(r, 'GLOBALS_TAMPERED', /Object\.prototype\.then/);
  });

  it('replaces its own manifest.output.safeParse to let a wrong output through', async () => {
    const r = await call(
      attacker(
        `(manifest.output as unknown as { safeParse: unknown }).safeParse = (v: unknown) => ({ success: true, data: v }); return { sum: 'not a number' };`,
      ),
    );
    refused(r, 'OUTPUT_INVALID', /attacker returned output that does not match its output schema: sum: .*expected number/);
    assert.deepEqual(r.output, { sum: 'not a number' }, 'the judge shows the output it refused');
  });

  it('overwrites the image’s zod, which every tool and test bundle imports: the write is refused, the image is read-only', async () => {
    const attempt = `let extra = 'written';
      try { fs.writeFileSync(${JSON.stringify(ZOD_PATH)}, 'export const z = {};'); } catch (err) { extra = String((err as { code?: unknown }).code); }`;
    const r = await call(attacker(`${attempt} return { sum: 'not a number', extra };`));
    refused(r, 'OUTPUT_INVALID', /attacker returned output that does not match its output schema: sum: .*expected number/);
    assert.deepEqual(r.output, { sum: 'not a number', extra: 'ERR_ACCESS_DENIED' }, 'the permission model refuses the write');
    // Plain node in the container (exec mode, no permission model) meets the read-only image.
    const exec = await sandbox.runJob({
      mode: 'exec',
      files: {},
      command: ['node', '-e', `const fs = require('fs'); ${attempt.replace(' as { code?: unknown }', '')} console.log(extra);`],
      limits: { timeoutMs: 10_000 },
    });
    if (exec.containerId) used.add(exec.containerId);
    assert.match(exec.stdout.trim(), /^(EROFS|EACCES)$/, `${exec.reason}\n${exec.stderr}`);
  });

  it('patches Object.prototype.toJSON while it loads', async () => {
    const r = await call(
      attacker(`return { sum: 'x' };`, `(Object.prototype as { toJSON?: unknown }).toJSON = function () { return { sum: 3 }; };`),
    );
    refused(r, 'GLOBALS_TAMPERED', /while it loaded, changed built-in objects \(Object\.prototype\.toJSON\)/);
  });

  it('swaps its zod output schema for a hand-written one that accepts anything', async () => {
    const r = await call(
      attacker(
        `return { sum: 'x' };`,
        `(manifest as { output: unknown }).output = { safeParse: (v: unknown) => ({ success: true, data: v }) };`,
      ),
    );
    refused(r, 'SCHEMA_UNREADABLE', /manifest\.output is not a zod schema, so the judge cannot check its output/);
  });

  it('returns a 100k-deep result (which crashed the host’s JSON before)', async () => {
    const r = await call(attacker(`let v: unknown = 1; for (let i = 0; i < 100_000; i++) v = [v]; return { sum: 1, extra: v };`));
    refused(r, 'RESULT_TOO_DEEP', /output nests deeper than 64 levels \(at output\.extra\[0\]/);
    assert.equal(r.output, undefined);
  });

  it('returns more than a megabyte of output', async () => {
    const r = await call(attacker(`return { sum: 1, extra: 'x'.repeat(2 << 20) };`));
    refused(r, 'RESULT_TOO_LARGE', /output is 2097\d+ bytes of JSON, more than the 1048576 allowed/);
  });

  it('returns a BigInt', async () => {
    const r = await call(attacker(`return { sum: 1, extra: { n: 10n } };`));
    refused(r, 'RESULT_NOT_SERIALIZABLE', /output\.extra\.n is a BigInt/);
  });

  it('returns a function', async () => {
    const r = await call(attacker(`return { sum: 1, extra: { f: () => 1 } };`));
    refused(r, 'RESULT_NOT_SERIALIZABLE', /output\.extra\.f is a function/);
  });

  it('returns a cycle', async () => {
    const r = await call(attacker(`const o: Record<string, unknown> = {}; o.self = o; return { sum: 1, extra: o };`));
    refused(r, 'RESULT_NOT_SERIALIZABLE', /output\.extra\.self refers back to itself \(a cycle\)/);
  });

  it('floods 100 MB onto stderr and returns a valid result: stopped at the output limit, flagged truncated', async () => {
    const r = await call(
      attacker(`const mb = 'x'.repeat(1 << 20); for (let i = 0; i < 100; i++) process.stderr.write(mb); return { sum: 1 };`),
    );
    refused(r, 'OUTPUT_LIMIT', /wrote more than 1048576 bytes to stdout\/stderr and was killed; output truncated/);
    assert.equal(r.killedBy, 'output');
    assert.equal(r.truncated, true);
    assert.equal(r.logsTruncated, true);
    assert.ok((r.logBytes?.stderr ?? 0) > 1 << 20, `counted what was written (${r.logBytes?.stderr})`);
    assert.ok(r.stderr.length < 256 * 1024, 'kept only a head and a tail');
    assert.match(r.stderr, /bytes not kept/);
  });

  it('writes more stderr than the result keeps, under the limit: the call stands, the cut is flagged', async () => {
    const r = await call(attacker(`process.stderr.write('y'.repeat(300 * 1024)); return { sum: input.a + 1 };`));
    assertContained(r);
    assert.equal(r.ok, true, r.reason);
    assert.deepEqual(r.output, { sum: 2 });
    assert.equal(r.logsTruncated, true, 'not dropped silently');
    assert.deepEqual(r.logBytes, { stdout: 0, stderr: 300 * 1024 });
    assert.match(r.stderr, /\[… \d+ bytes not kept …\]/);
  });

  it('an exec-mode command writes a 100k-deep forged frame into the runner’s stdout: ignored (no nonce), its real exit reported', async () => {
    const r = await sandbox.runJob({
      mode: 'exec',
      files: {},
      command: [
        'node',
        '-e',
        `const fs = require('fs');
         const frame = ${JSON.stringify(RESULT_MARKER)} + '{"ok":true,"durationMs":1,"output":' + '['.repeat(100000) + ']'.repeat(100000) + '}\\n';
         fs.writeFileSync('/proc/1/fd/1', frame); process.stdout.write(frame); process.exit(3);`,
      ],
      limits: { timeoutMs: 10_000 },
    });
    if (r.containerId) used.add(r.containerId);
    refused(r, 'EXIT_NONZERO', /the command exited with code 3/);
    assert.equal(r.exitCode, 3);
    assert.equal(r.output, undefined);
  });
});

/** A small honest tool whose tests the attacks below subvert. */
const ADDER = `import { z } from 'zod';
export const manifest = {
  name: 'add_numbers',
  description: 'Adds two numbers.',
  sideEffect: 'read',
  permissions: { network: [], env: [] },
  input: z.object({ a: z.number(), b: z.number() }),
  output: z.object({ sum: z.number() }),
};
export async function run(input: { a: number; b: number }) {
  return { sum: input.a + input.b + (input.a === 2 ? 1 : 0) }; // wrong for a = 2
}
`;
const HEADER = `import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { run } from './tool.ts';
`;
const PASSING = `test('adds', async () => assert.equal((await run({ a: 1, b: 2 })).sum, 3));\n`;
const FAILING = `test('adds two and two', async () => assert.equal((await run({ a: 2, b: 2 })).sum, 4));\n`;

async function mock(tests: string, source = ADDER): Promise<StageResult> {
  return mockStage({ source, tests: HEADER + tests, limits: { timeoutMs: 20_000 } }, sandbox);
}

function failedStage(stage: StageResult, reason: RegExp): void {
  assert.equal(stage.status, 'failed', `not forged: ${JSON.stringify(stage)}`);
  assert.match(stage.reason ?? '', reason);
}

describe('a test file (or the tool under test) in the mock stage', { concurrency: 2 }, () => {
  it('control: the honest suite fails on the tool’s bug, naming the test', async () => {
    const stage = await mock(PASSING + FAILING);
    failedStage(stage, /^1 of 2 tests failed: adds two and two$/);
  });

  it('a failing suite prints a passing result frame and node:test pass events on stdout', async () => {
    const stage = await mock(
      `${PASSING}${FAILING}test('prints', () => {
  console.log(${FORGED_FRAME});
  console.log(JSON.stringify({ type: 'test:pass', data: { name: 'adds two and two', nesting: 0 } }));
  console.log('ok 2 - adds two and two');
});\n`,
    );
    failedStage(stage, /^1 of 3 tests failed: adds two and two$/);
  });

  it('process.exit(0) in a failing test', async () => {
    const stage = await mock(
      `${PASSING}test('adds two and two', async () => { if ((await run({ a: 2, b: 2 })).sum !== 4) process.exit(0); });\ntest('runs after', () => {});\n`,
    );
    // Whether the pass of 'adds' reached the reporter before the exit is a race; the rest never can.
    failedStage(
      stage,
      /the test process exited with code 0 before its suite finished \(after [01] tests?\); declared tests that never reported: (adds, )?adds two and two, runs after/,
    );
  });

  it('writes a passing report to the runner’s stdout through /proc/<ppid>/fd/1', async () => {
    const stage = await mock(
      `${FAILING}test('reports success itself', () => { fs.writeFileSync('/proc/' + process.ppid + '/fd/1', ${FORGED_FRAME} + '\\n'); });\n`,
    );
    failedStage(stage, /^2 of 2 tests failed: adds two and two, reports success itself$/);
    assert.match(stage.tests?.find((t) => t.name === 'reports success itself')?.error ?? '', /Access to this API has been restricted/);
  });

  it('writes forged test reports onto the judge’s report channel (fd 3)', async () => {
    const stage = await mock(
      `${FAILING}test('forges', () => { fs.writeSync(3, 'x {"k":"event","type":"pass","name":"adds two and two","nesting":0,"suite":false,"skip":false,"todo":false,"ms":1}\\nx {"k":"done","tampered":[]}\\n'); });\n`,
    );
    failedStage(stage, /did not come from Forge's harness \(it lacks the job's nonce\)/);
  });

  it('the tool under test registers extra passing tests: more passes than the file declares', async () => {
    const stage = await mock(
      PASSING + FAILING,
      `${ADDER}import { test as extra } from 'node:test';\nfor (let i = 0; i < 5; i++) extra('padding ' + i, () => {});\n`,
    );
    failedStage(
      stage,
      /reported 7 results for the 2 tests declared in the test file; passing but not declared there: padding 0, padding 1/,
    );
  });

  it('a declared failing test hidden in a skipped suite never runs', async () => {
    const stage = await mock(`${PASSING}describe.skip('later', () => { ${FAILING} });\n`);
    failedStage(stage, /1 of the 2 tests declared in the test file never ran: later > adds two and two/);
  });

  it('a test patches Object.prototype.toJSON and Promise.prototype.then', async () => {
    const stage = await mock(
      `${PASSING}${FAILING}test('patches', () => {
  (Object.prototype as { toJSON?: unknown }).toJSON = function () { return {}; };
  const then = Promise.prototype.then; Promise.prototype.then = function (this: Promise<unknown>, ...a: Parameters<typeof then>) { return then.apply(this, a); } as typeof then;
});\n`,
    );
    failedStage(stage, /the test process changed built-in objects \(Object\.prototype\.toJSON, Promise\.prototype\.then\)/);
  });

  it('the tool ends the test process when it sees it is under test', async () => {
    const stage = await mock(
      PASSING + FAILING,
      ADDER.replace('return { sum:', "if (process.argv.some((a) => a.includes('judged'))) process.exit(0);\n  return { sum:"),
    );
    failedStage(stage, /exited with code 0 before its suite finished \(after 0 tests\)/);
  });
});

describe('a tool in the live stage', () => {
  const host = 'api.integrity.invalid';
  const apiSpec = {
    baseUrl: `https://${host}/v1`,
    auth: { kind: 'none' as const },
    endpoints: [
      {
        id: 'sum',
        method: 'GET' as const,
        path: '/sum',
        description: 'adds',
        safeRead: true,
        response: { type: 'object' },
        errorCodes: [],
      },
    ],
  };
  const liveTool = (body: string) =>
    attacker(body)
      .replace('permissions: { network: [], env: [] }', `permissions: { network: ['${host}'], env: [] }`)
      .replace('input: z.object({ a: z.number() })', 'input: z.object({ a: z.number() }).meta({ examples: [{ a: 1 }] })');
  /** The API's name points at a private address: Forge's reach check does not call that "offline", so the tool runs. */
  const live = (source: string) =>
    liveStage({ source, apiSpec, manifest: readManifestSource(source).manifest }, sandbox, {
      docker,
      image,
      extraHosts: [`${host}:10.20.30.40`],
    });

  it('prints a passing live probe line and a passing result frame, then throws', async () => {
    const stage = await live(
      liveTool(`console.log(${FORGED_LIVE}); console.log(${FORGED_FRAME}); throw new Error('the real outcome: a failure');`),
    );
    failedStage(stage, /^the real call with input \{"a":1\} failed: TOOL_THREW: the real outcome: a failure/);
    assert.equal(stage.tests?.[0]?.passed, false);
  });

  it('prints forged frames and exits 0 before returning', async () => {
    const stage = await live(liveTool(`console.log(${FORGED_LIVE}); console.log(${FORGED_FRAME}); process.exit(0);`));
    failedStage(stage, /failed: EXITED_EARLY: the tool's process exited with code 0 before it returned a result/);
  });
});

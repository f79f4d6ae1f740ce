/** The judge's pure parts: bounded JSON, the host's frame parsing, declared tests, the judge's own checks. */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonDepth, MAX_JSON_DEPTH, parseBoundedJson } from '../../runner/bounded-json.ts';
import { checkOutput, judgedArgs } from '../../runner/judge.ts';
import { outputProblem } from '../../runner/judged.ts';
import { StreamLog } from '../../runner/logs.ts';
import { RESULT_MARKER, resultMarker, splitRunnerOutput } from '../../runner/protocol.ts';
import { compareDeclared } from '../../runner/test-mode.ts';
import { declaredTests } from '../../services/sandbox/stages/declared-tests.ts';

const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

describe('bounded JSON', () => {
  it('measures nesting on the text, ignoring brackets inside strings, and stops early', () => {
    assert.equal(jsonDepth('{"a":[1,{"b":"[[[{"}]}'), 3);
    assert.equal(jsonDepth('"\\"[["'), 0);
    assert.equal(jsonDepth(deep(100_000), 10), 11, 'stops right past the limit');
  });

  it('refuses too deep and too large before parsing, each with its own code', () => {
    const tooDeep = parseBoundedJson(deep(100_000), { maxBytes: 1 << 20, maxDepth: MAX_JSON_DEPTH }, 'the result');
    assert.deepEqual(tooDeep, { ok: false, code: 'RESULT_TOO_DEEP', message: 'the result nests deeper than 64 levels of arrays/objects' });
    const tooLarge = parseBoundedJson(JSON.stringify('x'.repeat(2000)), { maxBytes: 1000, maxDepth: 8 }, 'the result');
    assert.equal(tooLarge.ok, false);
    assert.equal(!tooLarge.ok && tooLarge.code, 'RESULT_TOO_LARGE');
    const malformed = parseBoundedJson('{"a":', { maxBytes: 1000, maxDepth: 8 }, 'the result');
    assert.equal(!malformed.ok && malformed.code, 'RESULT_MALFORMED');
    assert.deepEqual(parseBoundedJson('{"a":[1]}', { maxBytes: 1000, maxDepth: 8 }, 'x'), { ok: true, value: { a: [1] } });
  });
});

describe('the host reading the judge’s frame', () => {
  const nonce = 'ab'.repeat(16);
  const real = `${resultMarker(nonce)}${JSON.stringify({ ok: false, durationMs: 5, error: { code: 'TOOL_THREW', message: 'm' } })}\n`;

  it('takes only the frame that carries the job’s nonce, wherever forged ones are', () => {
    const forged = `${RESULT_MARKER}${JSON.stringify({ ok: true, durationMs: 1 })}\n`;
    const split = splitRunnerOutput(`${forged}${real}${forged}`, nonce);
    assert.equal(split.result?.ok, false);
    assert.equal(split.result?.error?.code, 'TOOL_THREW');
    assert.equal(splitRunnerOutput(forged, nonce).result, undefined, 'a frame without the nonce is never the result');
  });

  it('refuses a 100k-deep frame without throwing', () => {
    const split = splitRunnerOutput(`${resultMarker(nonce)}{"ok":true,"durationMs":1,"output":${deep(100_000)}}\n`, nonce);
    assert.equal(split.result, undefined);
    assert.match(split.malformed ?? '', /nests deeper than 68 levels/);
  });
});

describe('declared tests, read from the source', () => {
  it('counts literal tests at fixed places, with their suites and subtests', () => {
    const d = declaredTests(`import { test, describe, it as should } from 'node:test';
test('a', () => {});
describe('g', () => { should('b', async (t) => { await t.test('sub', () => {}); }); test.skip('c'); });
describe.skip('hidden', () => { test('inner', () => {}); });`);
    assert.deepEqual(d, {
      tests: [
        { path: [], name: 'a' },
        { path: ['g'], name: 'b' },
        { path: ['g', 'b'], name: 'sub' },
        { path: ['g'], name: 'c' },
        { path: ['hidden'], name: 'inner' },
      ],
      dynamic: 0,
    });
  });

  it('counts loops, conditions, helpers, computed names and tests inside tests as dynamic sites', () => {
    const d = declaredTests(`import test from 'node:test';
for (const x of [1, 2]) test('loop ' + x, () => {});
if (process.env.X) test('cond', () => {});
const helper = () => test('helper', () => {});
test(\`name \${1}\`, () => {});
test('outer', () => { test('inside', () => {}); });`);
    assert.deepEqual(d, { tests: [{ path: [], name: 'outer' }], dynamic: 5 });
    assert.equal(declaredTests(`const { test } = await import('node:test'); test('x');`).dynamic, 1, 'node:test reached another way');
  });

  it('compares what ran with what was declared', () => {
    const ran = (names: string[]) => names.map((name) => ({ name, path: [], pass: true, skipped: false, durationMs: 0 }));
    const declared = {
      tests: [
        { path: [], name: 'a' },
        { path: [], name: 'b' },
      ],
      dynamic: 0,
    };
    assert.deepEqual(compareDeclared(ran(['a', 'b']), declared), { missing: [], undeclared: [] });
    assert.deepEqual(compareDeclared(ran(['a']), declared), { missing: ['b'], undeclared: [] });
    assert.deepEqual(compareDeclared(ran(['a', 'b', 'b', 'x']), declared), { missing: [], undeclared: ['b', 'x'] });
    assert.deepEqual(compareDeclared(ran(['a', 'b', 'x']), { ...declared, dynamic: 1 }), { missing: [], undeclared: [] });
  });
});

describe('the judge’s own checks', () => {
  it('names what in an output is not JSON, and where', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    let nested: unknown = 1;
    for (let i = 0; i < 100_000; i++) nested = [nested];
    assert.match(outputProblem({ a: { n: 1n } })?.message ?? '', /output\.a\.n is a BigInt/);
    assert.match(outputProblem({ f: () => 1 })?.message ?? '', /output\.f is a function/);
    assert.match(outputProblem({ x: cycle })?.message ?? '', /output\.x\.self refers back to itself/);
    assert.equal(outputProblem(nested)?.code, 'RESULT_TOO_DEEP');
    assert.equal(outputProblem({ n: Number.NaN })?.code, 'RESULT_NOT_SERIALIZABLE');
    assert.equal(outputProblem({ shared: [cycle.x, { d: new Date(0) }] }), undefined);
  });

  it('checks an output against the JSON Schema the tool declared, in its own realm', () => {
    const schema = { type: 'object', properties: { sum: { type: 'number' } }, required: ['sum'], additionalProperties: false };
    assert.equal(checkOutput({ sum: 1 }, schema, 't'), undefined);
    assert.match(checkOutput({ sum: 'x' }, schema, 't')?.message ?? '', /^t returned output that does not match its output schema: sum/);
    assert.equal(checkOutput({ sum: 1, extra: 1 }, schema, 't')?.code, 'OUTPUT_INVALID');
    assert.equal(checkOutput({ anything: 1 }, null, 't'), undefined, 'an opaque schema allowed by the job: only bounds');
  });

  it('keeps a head and a tail of a log and says how much was cut', () => {
    const log = new StreamLog();
    log.add(Buffer.from('start\n'));
    for (let i = 0; i < 100; i++) log.add(Buffer.alloc(4096, 'x'));
    log.add(Buffer.from('\nthe end'));
    assert.equal(log.truncated, true);
    assert.equal(log.bytes, 6 + 100 * 4096 + 8);
    const text = log.text();
    assert.ok(text.startsWith('start\n'));
    assert.ok(text.endsWith('the end'));
    assert.match(text, /\[… \d+ bytes not kept …\]/);
    assert.ok(text.length < 80 * 1024);
  });
});

describe('the judged process’s command line', () => {
  const setup = { runnerDir: '/opt/forge', judgedPath: '/opt/forge/judged.mjs', jobDir: '/tmp/job', heapMb: 64 };

  it('is the same whatever the job, so the process starts before its job arrives', () => {
    const args = judgedArgs(setup);
    assert.deepEqual(args.slice(0, 3), ['--experimental-permission', '--allow-fs-read=/opt/forge/', '--allow-fs-read=/tmp/job/']);
    assert.ok(args.includes('--disallow-code-generation-from-strings'));
    assert.ok(!args.some((a) => /allow-(fs-write|child-process|worker|addons)/.test(a)), 'nothing beyond reading its own files');
    assert.equal(args.at(-1), '/opt/forge/judged.mjs');
  });

  it('on an egress network, adds the preload flag as the script’s argument, granting nothing', () => {
    const args = judgedArgs({ ...setup, egress: true });
    assert.deepEqual(
      args.slice(-2),
      ['/opt/forge/judged.mjs', '--egress'],
      'after the script: an argument to the harness, not a node option',
    );
    assert.deepEqual(args.slice(0, -1), judgedArgs(setup), 'the same permission flags');
  });
});

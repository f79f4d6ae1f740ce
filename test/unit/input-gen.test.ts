/** Forge's input generator (domain/input-gen.ts) and the rules its checks judge by (domain/forge-checks.ts). */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import {
  type CaseOutcome,
  FAULT_CHECKS,
  type FaultKind,
  judgeFaultCase,
  judgeInputCase,
  MAX_FAULT_REQUESTS,
  type ObservedRequest,
} from '../../domain/forge-checks.ts';
import { describeInput, type GeneratedInput, generateInputs, generateValue, LONG_STRING, seedFrom } from '../../domain/input-gen.ts';

const jsonSchema = (schema: z.ZodType) => schema.toJSONSchema({ io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
const inputsOf = (schema: z.ZodType, seed = 7, max?: number) => generateInputs(jsonSchema(schema), { seed, ...(max ? { max } : {}) });
const values = (list: GeneratedInput[], key: string) => list.map((c) => (c.input as Record<string, unknown>)[key]);

describe('generateInputs', () => {
  it('is deterministic for a seed, and the random inputs change with it', () => {
    const schema = z.object({ text: z.string(), count: z.number().int().min(0).max(50).optional() });
    assert.deepEqual(inputsOf(schema, 1), inputsOf(schema, 1));
    const random = (seed: number) => inputsOf(schema, seed).filter((c) => c.name.startsWith('random'));
    assert.ok(random(1).length > 0);
    assert.notDeepEqual(random(1), random(2));
    assert.equal(seedFrom('count_words'), seedFrom('count_words'));
    assert.notEqual(seedFrom('count_words'), seedFrom('slugify'));
  });

  it('makes only inputs the schema accepts, each once, at most max of them', () => {
    const schemas = [
      z.object({ text: z.string().max(1_000_000) }),
      z.object({
        title: z.string().trim().min(1).max(200),
        body: z.string().max(10_000),
        tags: z.array(z.string().trim().min(1).max(40)).max(10).default([]),
      }),
      z.object({
        n: z.number().int().optional(),
        f: z.number().positive(),
        e: z.enum(['a', 'b', 'c']),
        nn: z.string().nullable(),
        email: z.email().optional(),
        when: z.iso.datetime().optional(),
        u: z.union([z.string(), z.number()]),
        rec: z.record(z.string(), z.number()),
        tup: z.tuple([z.string(), z.number()]),
        flag: z.boolean().default(false),
        step: z.number().multipleOf(5).min(10).max(40),
      }),
      z.string().min(3).max(5),
      z.array(z.number().int().min(-3).max(3)).min(1).max(4),
    ];
    for (const schema of schemas) {
      const list = inputsOf(schema);
      assert.ok(list.length >= 4, `${list.length} inputs for ${JSON.stringify(jsonSchema(schema))}`);
      assert.ok(list.length <= 7);
      const validator = z.fromJSONSchema(jsonSchema(schema) as Parameters<typeof z.fromJSONSchema>[0]);
      for (const c of list) assert.ok(validator.safeParse(c.input).success, `${c.name}: ${describeInput(c.input)}`);
      // The tool's own zod schema agrees (lengths in UTF-16 units, as zod counts them).
      for (const c of list)
        assert.ok(schema.safeParse(c.input).success || c.name.startsWith('whitespace'), `${c.name}: ${describeInput(c.input)}`);
      assert.equal(new Set(list.map((c) => JSON.stringify(c.input))).size, list.length, 'distinct');
    }
    assert.equal(inputsOf(z.object({ text: z.string() }), 7, 3).length, 3);
  });

  it('reaches the edges: empty, longest, non-ASCII and whitespace strings, optional fields absent and present', () => {
    const list = inputsOf(
      z.object({ text: z.string(), note: z.string().optional() }).meta({ examples: [{ text: 'the quick brown fox' }] }),
    );
    assert.equal(list[0]!.name, "the schema's example");
    assert.deepEqual(list[0]!.input, { text: 'the quick brown fox' });
    const texts = values(list, 'text') as string[];
    assert.ok(texts.includes(''), 'an empty string');
    assert.ok(
      texts.some((t) => t.length === LONG_STRING),
      'a very long string',
    );
    assert.ok(
      texts.some((t) => /[^ -~]/.test(t) && /\p{Script=Han}/u.test(t) && /\p{Extended_Pictographic}/u.test(t)),
      'non-ASCII text',
    );
    assert.ok(
      texts.some((t) => t.length > 0 && t.trim() === ''),
      'whitespace only',
    );
    assert.ok(
      list.some((c) => !('note' in (c.input as object))),
      'the optional field absent',
    );
    assert.ok(
      list.some((c) => 'note' in (c.input as object)),
      'the optional field present',
    );
    const minimal = list.find((c) => c.name.startsWith('required fields only'));
    assert.deepEqual(minimal?.input, { text: '' });
  });

  it('takes the exact bounds of lengths, numbers and arrays', () => {
    const list = inputsOf(
      z.object({
        title: z.string().min(2).max(30),
        year: z.number().int().min(1900).max(2100),
        tags: z.array(z.string()).min(1).max(3),
      }),
    );
    const lengths = (values(list, 'title') as string[]).map((t) => t.length);
    assert.ok(lengths.includes(2) && lengths.includes(30), `title lengths ${lengths}`);
    const years = values(list, 'year') as number[];
    assert.ok(years.includes(1900) && years.includes(2100), `years ${years}`);
    const sizes = (values(list, 'tags') as unknown[][]).map((t) => t.length);
    assert.ok(sizes.includes(1) && sizes.includes(3), `tag counts ${sizes}`);
    // An unbounded integer meets the largest and smallest safe integers, and zero.
    const n = values(inputsOf(z.object({ n: z.number().int() })), 'n') as number[];
    assert.ok(n.includes(Number.MAX_SAFE_INTEGER) && n.includes(Number.MIN_SAFE_INTEGER) && n.includes(0), `n ${n}`);
    // Exclusive bounds stay inside.
    const positive = values(inputsOf(z.object({ p: z.number().int().positive().max(9) })), 'p') as number[];
    assert.ok(positive.every((p) => p >= 1 && p <= 9) && positive.includes(1) && positive.includes(9), `p ${positive}`);
  });

  it('fills a pattern from the examples and values that match it, and gives up (no inputs) when nothing does', () => {
    const code = z.string().regex(/^[A-Z]{3}$/);
    const list = inputsOf(z.object({ base: code.default('USD'), quote: code }).meta({ examples: [{ base: 'USD', quote: 'JPY' }] }));
    assert.ok(list.length >= 2);
    for (const c of list) assert.match((c.input as { quote: string }).quote, /^[A-Z]{3}$/);
    assert.ok((values(list, 'quote') as string[]).includes('JPY'), 'the example value is among them');
    const odd = z.object({ id: z.string().regex(/^zz-\d{7}-q$/) });
    assert.deepEqual(inputsOf(odd), [], 'no candidate fits and there is no example');
    assert.deepEqual(
      inputsOf(odd.meta({ examples: [{ id: 'zz-1234567-q' }] })).map((c) => c.input),
      [{ id: 'zz-1234567-q' }],
    );
  });

  it('keeps a string with emoji within a UTF-16 maxLength, and ends a recursive schema', () => {
    const short = values(inputsOf(z.object({ s: z.string().max(5) })), 's') as string[];
    assert.ok(short.every((s) => s.length <= 5));
    interface Node {
      name: string;
      children?: Node[];
    }
    const node: z.ZodType<Node> = z.object({
      name: z.string(),
      get children() {
        return z.array(node).optional();
      },
    });
    const tree = generateValue(jsonSchema(node), 'typical');
    assert.ok(JSON.stringify(tree).length < 10_000, 'finite');
    assert.ok(inputsOf(node).length > 3);
  });

  it('names an input in one short line, long strings cut to their head and length', () => {
    assert.equal(describeInput({ text: '' }), '{"text":""}');
    assert.equal(describeInput({ text: 'x'.repeat(10_000) }), `{"text":"${'x'.repeat(40)}… (10000 chars)"}`);
    assert.ok(describeInput({ list: Array.from({ length: 500 }, (_, i) => i) }).length <= 301);
  });
});

describe("the checks' verdicts", () => {
  const outcome = (o: Partial<CaseOutcome>): CaseOutcome => ({ ok: false, budgetMs: 5000, requests: [], ...o });
  const threw = (name: string | undefined, message: string) => ({ code: 'TOOL_THREW', message, ...(name ? { name } : {}) });

  it('passes valid output and clean errors, and fails crashes, hangs, non-Errors and broken output', () => {
    assert.equal(judgeInputCase(outcome({ ok: true })).passed, true);
    assert.equal(judgeInputCase(outcome({ error: threw('Error', 'text must not be empty') })).passed, true);
    assert.equal(judgeInputCase(outcome({ error: { code: 'INPUT_INVALID', message: 'title: too small' } })).passed, true);
    const crash = judgeInputCase(outcome({ error: threw('TypeError', "Cannot read properties of undefined (reading 'length')") }));
    assert.equal(crash.passed, false);
    assert.match(crash.detail!, /^it crashed with TypeError: Cannot read properties of undefined/);
    assert.match(judgeInputCase(outcome({ error: threw(undefined, 'oops') })).detail!, /not an Error/);
    assert.match(judgeInputCase(outcome({ error: threw('Error', '  ') })).detail!, /without a message/);
    assert.match(judgeInputCase(outcome({ error: { code: 'TIMEOUT', message: 'x' } })).detail!, /did not finish within 5000 ms/);
    assert.match(
      judgeInputCase(outcome({ error: { code: 'OUTPUT_INVALID', message: 'words: expected number' } })).detail!,
      /breaks its own output schema: words: expected number/,
    );
  });

  const check = (kind: FaultKind) => FAULT_CHECKS.find((c) => c.kind === kind)!;
  const req = (atMs: number, status: number | null, fault?: string): ObservedRequest => ({
    atMs,
    method: 'GET',
    status,
    ...(fault ? { fault } : {}),
  });
  const baseline = { ok: true, outputJson: '{"rate":1}' };

  it('judges the 429 check on the spacing the judge saw and on the outcome', () => {
    const limited = req(100, 429, 'rate_limit');
    assert.equal(judgeFaultCase(check('rate_limit'), outcome({ ok: true, requests: [limited, req(1110, 200)] }), baseline).passed, true);
    const early = judgeFaultCase(check('rate_limit'), outcome({ ok: true, requests: [limited, req(130, 200)] }), baseline);
    assert.equal(early.passed, false);
    assert.match(early.detail!, /retried 30 ms after a 429 whose Retry-After asked for 1 s/);
    const gaveUp = judgeFaultCase(check('rate_limit'), outcome({ error: threw('Error', 'answered 429'), requests: [limited] }), baseline);
    assert.match(gaveUp.detail!, /did not retry after a 429/);
    const failedAfter = judgeFaultCase(
      check('rate_limit'),
      outcome({ error: threw('Error', 'x'), requests: [limited, req(1200, 200)] }),
      baseline,
    );
    assert.equal(failedAfter.passed, false);
  });

  it('fails a tool that swallows a 5xx, does not retry it, retries without bound or does not name the status', () => {
    const answered = (n: number) => Array.from({ length: n }, (_, i) => req(i * 300, 503, 'server_error'));
    const sc = check('server_error');
    assert.equal(
      judgeFaultCase(sc, outcome({ error: threw('Error', 'the API answered 503 after 3 attempts'), requests: answered(3) }), baseline)
        .passed,
      true,
    );
    assert.match(
      judgeFaultCase(sc, outcome({ ok: true, requests: answered(1) }), baseline).detail!,
      /returned output although every request was answered 503/,
    );
    assert.match(
      judgeFaultCase(sc, outcome({ error: threw('Error', 'answered 503'), requests: answered(1) }), baseline).detail!,
      /gave up after one request/,
    );
    assert.match(
      judgeFaultCase(sc, outcome({ error: threw('Error', 'refused'), requests: answered(MAX_FAULT_REQUESTS), overLimit: true }), baseline)
        .detail!,
      /kept retrying: Forge's mock refused it after 10 requests/,
    );
    assert.match(
      judgeFaultCase(sc, outcome({ error: threw('Error', 'upstream failed'), requests: answered(3) }), baseline).detail!,
      /does not name the status 503/,
    );
    assert.match(
      judgeFaultCase(sc, outcome({ budgetMs: 10_000, error: { code: 'TIMEOUT', message: 't' }, requests: answered(4) }), baseline).detail!,
      /did not give up within 10000 ms/,
    );
  });

  it('wants a timeout to end in an error that says so, and malformed JSON to be refused', () => {
    const timedOut = [req(300, null, 'timeout')];
    assert.equal(
      judgeFaultCase(check('timeout'), outcome({ error: threw('TimeoutError', 'the request timed out'), requests: timedOut }), baseline)
        .passed,
      true,
    );
    assert.equal(judgeFaultCase(check('timeout'), outcome({ ok: true, requests: timedOut }), baseline).passed, false);
    assert.match(
      judgeFaultCase(check('timeout'), outcome({ error: threw('Error', 'failed'), requests: timedOut }), baseline).detail!,
      /does not say the request timed out/,
    );
    const bad = [req(5, 200, 'malformed_json')];
    const mj = check('malformed_json');
    assert.equal(
      judgeFaultCase(mj, outcome({ error: threw('SyntaxError', 'Unexpected end of JSON input'), requests: bad }), baseline).passed,
      true,
    );
    assert.equal(
      judgeFaultCase(mj, outcome({ error: threw('Error', 'the API returned malformed JSON'), requests: bad }), baseline).passed,
      true,
    );
    assert.match(
      judgeFaultCase(mj, outcome({ ok: true, outputJson: '{"rate":0}', requests: bad }), baseline).detail!,
      /passing garbage on/,
    );
    assert.equal(
      judgeFaultCase(mj, outcome({ ok: true, outputJson: '{"rate":1}', requests: bad }), baseline).passed,
      true,
      'output that does not depend on the body',
    );
    assert.match(
      judgeFaultCase(mj, outcome({ error: threw('Error', 'bad answer'), requests: bad }), baseline).detail!,
      /does not say the response was malformed JSON/,
    );
    assert.match(
      judgeFaultCase(mj, outcome({ error: threw('TypeError', 'x is undefined'), requests: bad }), baseline).detail!,
      /crashed with TypeError/,
    );
  });

  it('passes a fault check the input never exercised', () => {
    assert.match(judgeFaultCase(check('server_error'), outcome({ ok: true }), baseline).detail!, /^not exercised/);
  });
});

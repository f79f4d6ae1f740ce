import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ranking from '../../domain/ranking.ts';
import { type Candidate, cosine, type DecideOptions, paramsFit, type TermEvidence, usageScore } from '../../domain/ranking.ts';
import { harness } from '../../harness/index.ts';

// The functions under the agent's current policy (harness/policy/ranking.ts): these tests pin both.
const { ranking: policy, lexical } = harness.policy;
const hybridScore = (parts: Parameters<typeof ranking.hybridScore>[0]) => ranking.hybridScore(parts, policy);
const smoothedSuccessRate = (invocations: number, successes: number) => ranking.smoothedSuccessRate(invocations, successes, policy);
const rerank = <C extends Candidate>(candidates: readonly C[]) => ranking.rerank(candidates, policy);
const needsConfirmation = (similarity: number) => ranking.needsConfirmation(similarity, policy);
const decide = (candidates: readonly Candidate[], opts: Omit<DecideOptions, 'policy'> = {}) =>
  ranking.decide(candidates, { ...opts, policy });
const termWeight = (docFrequency: number, catalogSize: number) => ranking.termWeight(docFrequency, catalogSize, lexical);
const lexicalSimilarity = (terms: readonly TermEvidence[], catalogSize: number) => ranking.lexicalSimilarity(terms, catalogSize, lexical);

const weatherSchema = {
  type: 'object',
  properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1 } },
  required: ['city'],
  additionalProperties: false,
};
const fxSchema = {
  type: 'object',
  properties: { amount: { type: 'number' }, from: { type: 'string' }, to: { type: 'string' } },
  required: ['amount', 'from', 'to'],
};

describe('scores', () => {
  it('weighs similarity 0.7, success 0.2, usage 0.1', () => {
    assert.equal(hybridScore({ similarity: 1, successRate: 1, usage: 1 }), 1);
    assert.ok(Math.abs(hybridScore({ similarity: 0.5, successRate: 1, usage: 0 }) - 0.55) < 1e-12);
    assert.ok(Math.abs(hybridScore({ similarity: 0, successRate: 0, usage: 1 }) - 0.1) < 1e-12);
  });

  it('log-scales usage against the most used', () => {
    assert.equal(usageScore(0, 0), 0);
    assert.equal(usageScore(100, 100), 1);
    assert.equal(usageScore(0, 100), 0);
    const ten = usageScore(10, 1000);
    assert.ok(ten > 0.3 && ten < 0.4, `10 of 1000 uses is worth a third, got ${ten}`);
  });

  it('gives an unused tool the prior success rate, fading with runs', () => {
    assert.equal(smoothedSuccessRate(0, 0), 0.8);
    assert.ok(smoothedSuccessRate(100, 100) > 0.99);
    assert.ok(smoothedSuccessRate(100, 50) < 0.52);
  });

  it('re-ranks by the hybrid score, stably', () => {
    const ranked = rerank([
      { name: 'b', similarity: 0.8, invocations: 0, successes: 0 },
      { name: 'a', similarity: 0.8, invocations: 0, successes: 0 },
      { name: 'reliable', similarity: 0.78, invocations: 200, successes: 199 },
      { name: 'flaky', similarity: 0.82, invocations: 200, successes: 100 },
    ]);
    assert.deepEqual(
      ranked.map((r) => r.name),
      ['reliable', 'flaky', 'a', 'b'],
    );
  });
});

describe('needsConfirmation', () => {
  it('confirms below 0.85', () => {
    assert.equal(needsConfirmation(0.849), true);
    assert.equal(needsConfirmation(0.85), false);
    assert.equal(needsConfirmation(0.99), false);
  });
});

describe('paramsFit', () => {
  it('fits when every required parameter is supplied and nothing unknown is', () => {
    assert.deepEqual(paramsFit(weatherSchema, { city: 'Zurich' }), { fit: true, missing: [], unknown: [], mismatched: [] });
    assert.equal(paramsFit(weatherSchema, { city: 'Zurich', days: 3 }).fit, true);
  });

  it('reports missing, unknown and mistyped parameters', () => {
    assert.deepEqual(paramsFit(weatherSchema, {}).missing, ['city']);
    assert.deepEqual(paramsFit(weatherSchema, { city: 'Oslo', incident: 'outage' }).unknown, ['incident']);
    assert.deepEqual(paramsFit(weatherSchema, { city: 'Oslo', days: 'soon' }).mismatched, ['days']);
  });

  it('accepts parameter names instead of values, compared loosely', () => {
    assert.equal(paramsFit(fxSchema, ['Amount', 'from', 'to']).fit, true);
    assert.equal(paramsFit({ type: 'object', properties: { zone_id: { type: 'string' } }, required: ['zone_id'] }, ['zoneId']).fit, true);
    assert.deepEqual(paramsFit(fxSchema, ['amount']).missing, ['from', 'to']);
  });

  it('takes numeric strings for numbers, ignores null/undefined, and checks enums', () => {
    assert.equal(paramsFit(fxSchema, { amount: '250', from: 'EUR', to: 'CHF' }).fit, true);
    assert.equal(paramsFit(fxSchema, { amount: 'lots', from: 'EUR', to: 'CHF' }).fit, false);
    assert.deepEqual(paramsFit(weatherSchema, { city: 'Oslo', days: null }).unknown, []);
    const dns = { type: 'object', properties: { type: { enum: ['A', 'TXT'] } }, required: ['type'] };
    assert.equal(paramsFit(dns, { type: 'txt' }).fit, true);
    assert.equal(paramsFit(dns, { type: 'MX' }).fit, false);
  });

  it('a tool without a schema fits only a request that supplies nothing', () => {
    assert.equal(paramsFit(undefined, {}).fit, true);
    assert.equal(paramsFit(undefined, { x: 1 }).fit, false);
  });
});

describe('decide', () => {
  const weather = (similarity: number, extra: Partial<Candidate> = {}): Candidate => ({
    name: 'weather_forecast',
    similarity,
    inputSchema: weatherSchema,
    ...extra,
  });

  it('forges when nothing is registered', () => {
    assert.equal(decide([]).action, 'forge');
  });

  it('reuses at 0.85 and above, asks for confirmation from 0.80', () => {
    assert.deepEqual([decide([weather(0.9)]).action, decide([weather(0.9)]).tool], ['reuse', 'weather_forecast']);
    assert.equal(decide([weather(0.85)]).action, 'reuse');
    assert.equal(decide([weather(0.849)]).action, 'confirm');
    assert.equal(decide([weather(0.8)]).action, 'confirm');
  });

  it('in 0.65–0.80 reuses only when the parameters fit', () => {
    assert.equal(decide([weather(0.7)], { args: { city: 'Bern' } }).action, 'confirm');
    assert.equal(decide([weather(0.65)], { args: { city: 'Bern' } }).action, 'confirm');
    // "let's weather this outage": nothing to fill the city with
    const trap = decide([weather(0.72)], { args: {} });
    assert.equal(trap.action, 'forge');
    assert.match(trap.reason, /parameters fit none/);
    // not checked: a person decides
    assert.match(decide([weather(0.7)]).reason, /not checked/);
  });

  it('forges below 0.65, however reliable and popular the tool', () => {
    const d = decide([weather(0.649, { invocations: 10_000, successes: 10_000 })], { args: { city: 'Bern' } });
    assert.equal(d.action, 'forge');
    assert.ok(d.score > 0.65, 'the re-ranked score is high, the similarity is not');
  });

  it('falls through to the next candidate whose parameters fit', () => {
    const d = decide([weather(0.75), { name: 'currency_convert', similarity: 0.7, inputSchema: fxSchema }], {
      args: { amount: 5, from: 'EUR', to: 'CHF' },
    });
    assert.equal(d.tool, 'currency_convert');
    assert.equal(d.action, 'confirm');
  });

  it('a strong match with misfitting parameters is confirmed, not run', () => {
    const d = decide([weather(0.95)], { args: {} });
    assert.equal(d.action, 'confirm');
    assert.deepEqual(d.paramsFit?.missing, ['city']);
  });

  it('never picks a quarantined tool', () => {
    const d = decide([weather(0.99, { status: 'quarantined' })]);
    assert.equal(d.action, 'forge');
  });

  it('lets re-ranking choose between two strong matches', () => {
    const d = decide([
      { name: 'new_weather', similarity: 0.9, inputSchema: weatherSchema },
      weather(0.88, { invocations: 300, successes: 297 }),
    ]);
    assert.equal(d.tool, 'weather_forecast');
    assert.equal(d.action, 'reuse');
  });
});

describe('lexical similarity', () => {
  const term = (t: Partial<TermEvidence>): TermEvidence => ({
    docFrequency: 1,
    inName: false,
    inDescription: false,
    inParams: false,
    fuzzy: 0,
    ...t,
  });

  it('weighs a word one tool uses at 1, shared words less, whatever the catalog size', () => {
    for (const n of [1, 12, 1000]) assert.equal(termWeight(1, n), 1);
    assert.ok(termWeight(3, 12) < termWeight(2, 12) && termWeight(2, 12) < 1);
    assert.ok(termWeight(12, 12) > 0);
  });

  it('puts one distinctive word in the 0.65–0.80 band and two above it', () => {
    const inDesc = lexicalSimilarity([term({ inDescription: true })], 12);
    const inName = lexicalSimilarity([term({ inName: true })], 12);
    const two = lexicalSimilarity([term({ inDescription: true }), term({ inDescription: true })], 12);
    assert.ok(inDesc >= 0.65 && inDesc < 0.8, `description word: ${inDesc}`);
    assert.ok(inName > inDesc && inName < 0.8, `name word: ${inName}`);
    assert.ok(two > 0.85, `two words: ${two}`);
    assert.ok(lexicalSimilarity([term({ inParams: true })], 12) < 0.65, 'a parameter word alone is not enough');
    assert.equal(lexicalSimilarity([term({})], 12), 0);
  });

  it('credits near-miss spellings through trigrams, above a floor', () => {
    assert.ok(lexicalSimilarity([term({ fuzzy: 0.8 })], 12) > 0.5);
    assert.equal(lexicalSimilarity([term({ fuzzy: 0.5 })], 12), 0);
  });

  it('computes a clamped cosine', () => {
    assert.equal(cosine([1, 0], [1, 0]), 1);
    assert.equal(cosine([1, 0], [-1, 0]), 0);
    assert.equal(cosine([1, 0], [0, 0]), 0);
    assert.equal(cosine([1], [1, 2]), 0);
    assert.ok(Math.abs(cosine([1, 1], [1, 0]) - Math.SQRT1_2) < 1e-12);
  });
});

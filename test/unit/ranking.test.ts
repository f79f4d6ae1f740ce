import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ranking from '../../domain/ranking.ts';
import {
  type ActionIntent,
  actionIntent,
  type Candidate,
  correctTypo,
  cosine,
  type DecideOptions,
  intentFit,
  oneSlip,
  paramsFit,
  requestValues,
  type TermEvidence,
  toolActions,
  usageScore,
  valueFit,
} from '../../domain/ranking.ts';
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
const intentOf = (text: string) => actionIntent(text, harness.policy.retrieval.intent, lexical.aliases);
const actionsOf = (tool: { name: string; description: string; sideEffect: 'read' | 'write' }) =>
  toolActions(tool, harness.policy.retrieval.intent, lexical.aliases);

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
  it('weighs similarity 0.7, success 0.2, usage 0.03 and intent fit 0.15 (of 1.08)', () => {
    assert.equal(hybridScore({ similarity: 1, successRate: 1, usage: 1, intent: 1 }), 1);
    assert.ok(Math.abs(hybridScore({ similarity: 0.5, successRate: 1, usage: 0, intent: 1 }) - 0.7 / 1.08) < 1e-12);
    assert.ok(Math.abs(hybridScore({ similarity: 0, successRate: 0, usage: 1, intent: 0 }) - 0.03 / 1.08) < 1e-12);
    assert.equal(hybridScore({ similarity: 1, successRate: 1, usage: 1 }), 1, 'no intent judged counts as a match');
  });

  it('weighs value fit 0.1 more when the request carries values, and leaves it out when it does not', () => {
    assert.equal(hybridScore({ similarity: 1, successRate: 1, usage: 1, intent: 1, values: 1 }), 1);
    assert.ok(Math.abs(hybridScore({ similarity: 1, successRate: 1, usage: 1, intent: 1, values: 0 }) - 1.08 / 1.18) < 1e-12);
    // a request without values scores as it did before the part existed
    assert.ok(Math.abs(hybridScore({ similarity: 0.5, successRate: 1, usage: 0, intent: 1 }) - 0.7 / 1.08) < 1e-12);
  });

  it("ranks the tool that can take the request's values above an equally worded one that cannot", () => {
    const ranked = rerank([
      { name: 'crm_record_create', similarity: 0.67, invocations: 40, successes: 40, valueFit: 0 },
      { name: 'dns_record_create', similarity: 0.67, invocations: 5, successes: 5, valueFit: 0.5 },
    ]);
    assert.equal(ranked[0]?.name, 'dns_record_create');
    // … but never over a clearly more similar one: it orders near-ties, as usage does
    const far = rerank([
      { name: 'closer', similarity: 0.9, invocations: 5, successes: 5, valueFit: 0 },
      { name: 'fills', similarity: 0.7, invocations: 5, successes: 5, valueFit: 1 },
    ]);
    assert.equal(far[0]?.name, 'closer');
  });

  it('ranks by similarity before usage when similarities are close', () => {
    // the case: a much used read tool a little less similar than the one that fits
    const ranked = rerank([
      { name: 'popular', similarity: 0.85, invocations: 5000, successes: 4950 },
      { name: 'closer', similarity: 0.89, invocations: 15, successes: 15 },
    ]);
    assert.deepEqual(
      ranked.map((r) => r.name),
      ['closer', 'popular'],
    );
    // usage still breaks a near-tie
    const tie = rerank([
      { name: 'rare', similarity: 0.88, invocations: 3, successes: 3 },
      { name: 'common', similarity: 0.875, invocations: 300, successes: 300 },
    ]);
    assert.equal(tie[0]?.name, 'common');
  });

  it('puts a tool that does what the request wants done above one that does not, at close similarity', () => {
    const ranked = rerank([
      { name: 'container_logs_summary', similarity: 0.9, invocations: 70, successes: 68, intentFit: 'mismatch' },
      { name: 'container_restart', similarity: 0.85, invocations: 15, successes: 15, intentFit: 'match' },
    ]);
    assert.equal(ranked[0]?.name, 'container_restart');
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
    // Use no longer lifts a tool that fails half its runs over unused ones just as similar.
    assert.deepEqual(
      ranked.map((r) => r.name),
      ['reliable', 'a', 'b', 'flaky'],
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

describe('actionIntent: what a request wants done', () => {
  const kindOf = (text: string) => {
    const i = intentOf(text);
    return i.actions.length ? `${i.kind}:${i.actions.join('+')}` : i.kind;
  };

  it('reads a request to see something as a read, and one with neither verb nor question as unknown', () => {
    assert.equal(kindOf('list the DNS records of example.com'), 'read');
    assert.equal(kindOf('when does the TLS certificate of example.com expire?'), 'read');
    assert.equal(kindOf('show me the logs of the api container'), 'read');
    assert.equal(kindOf('forecast for Oslo on Friday'), 'unknown');
  });

  it('finds the change asked for, and whether it is destructive', () => {
    assert.equal(kindOf('delete the TXT record _acme-challenge from example.com'), 'destructive:delete');
    assert.equal(kindOf('please restart the api container'), 'write:restart');
    assert.equal(kindOf('can you renew the SSL certificate for shop.example.com'), 'write:renew');
    assert.equal(kindOf('transfer example.net to another registrar'), 'destructive:transfer');
    assert.equal(kindOf('I need to cancel my subscription'), 'destructive:cancel');
    assert.equal(kindOf('create an A record for api.example.com'), 'write:create');
    assert.equal(kindOf('update the TTL of www.example.com to 300'), 'write:update');
    assert.equal(kindOf('get rid of the old MX records'), 'destructive:delete');
    assert.equal(kindOf('set up a TXT record for verification'), 'write:create', 'the phrasal verb, not "set"');
  });

  it('does not read a thing named like a verb as an instruction', () => {
    assert.equal(kindOf("what's the status of the domain transfer"), 'read');
    assert.equal(kindOf('why is the api container stuck in a restart loop?'), 'read');
    assert.equal(kindOf('how many views did my blog posts get last week?'), 'read');
    assert.equal(kindOf('summarize the release notes of nodejs/node'), 'read');
    assert.equal(kindOf('the worker container keeps restarting'), 'unknown');
    assert.equal(kindOf('where do readers of my-first-post come from'), 'read', 'a slug is a name');
  });

  it('honours negation, leaves quoted text alone, and hears "tell me" as a read', () => {
    assert.equal(kindOf("don't delete anything, just list the records"), 'read');
    assert.equal(kindOf('post "delete everything now" to #ops'), 'write:send');
    assert.equal(kindOf("ping https://status.example.com and tell me if it's down"), 'read');
    assert.equal(kindOf('tell the team in #releases that v2 is out'), 'write:send');
  });

  it('counts a participle after "to be", not a question about what was done', () => {
    assert.equal(kindOf('the old MX record needs to be removed'), 'destructive:delete');
    assert.equal(kindOf('has the record been deleted?'), 'read');
  });

  it('lets a change outweigh a read, and hears verbs of other languages wherever they stand', () => {
    assert.equal(kindOf('check the logs and restart the container'), 'write:restart');
    assert.equal(kindOf('den DNS-Eintrag www löschen'), 'destructive:delete');
    assert.equal(kindOf('redémarrer le conteneur web'), 'write:restart');
  });
});

describe('toolActions and intentFit', () => {
  it('a read tool changes nothing; a write tool does what its name says, else what its description opens with', () => {
    assert.deepEqual(actionsOf({ name: 'dns_records_list', description: 'List the DNS records.', sideEffect: 'read' }), []);
    assert.deepEqual(actionsOf({ name: 'dns_record_create', description: 'Create a DNS record.', sideEffect: 'write' }), ['create']);
    assert.deepEqual(
      actionsOf({ name: 'container_restart', description: 'Restart a container (stop, then start).', sideEffect: 'write' }),
      ['restart'],
    );
    assert.deepEqual(actionsOf({ name: 'slack_post_message', description: 'Post a message to a Slack channel.', sideEffect: 'write' }), [
      'send',
    ]);
    assert.deepEqual(actionsOf({ name: 'zone_editor', description: 'Update a record in a zone. Then list it.', sideEffect: 'write' }), [
      'update',
    ]);
    assert.deepEqual(actionsOf({ name: 'thing_doer', description: 'Does things.', sideEffect: 'write' }), []);
  });

  it('matches reads to read tools and each change to a tool that makes it', () => {
    const read: ActionIntent = { kind: 'read', actions: [], verbs: [] };
    const unknown: ActionIntent = { kind: 'unknown', actions: [], verbs: [] };
    const del: ActionIntent = { kind: 'destructive', actions: ['delete'], verbs: ['delete'] };
    const readTool = { sideEffect: 'read' as const, actions: [] };
    const deleter = { sideEffect: 'write' as const, actions: ['delete'] };
    const creator = { sideEffect: 'write' as const, actions: ['create'] };
    const vague = { sideEffect: 'write' as const, actions: [] };
    assert.equal(intentFit(read, readTool), 'match');
    assert.equal(intentFit(unknown, readTool), 'match');
    assert.equal(intentFit(del, readTool), 'mismatch', 'a read tool never serves a delete');
    assert.equal(intentFit(del, deleter), 'match');
    assert.equal(intentFit(del, creator), 'mismatch', 'nor does a tool that makes another change');
    assert.equal(intentFit(del, vague), 'unknown');
    assert.equal(intentFit(read, creator), 'mismatch', 'a request to see something never runs a write');
    assert.equal(intentFit(unknown, creator), 'unknown');
  });
});

describe('decide, weighing what the request wants done', () => {
  const del: ActionIntent = { kind: 'destructive', actions: ['delete'], verbs: ['delete'] };
  const dnsSchema = { type: 'object', properties: { domain: { type: 'string' } }, required: ['domain'] };
  const list = (similarity: number): Candidate => ({
    name: 'dns_records_list',
    similarity,
    inputSchema: dnsSchema,
    sideEffect: 'read',
    actions: [],
    intentFit: 'mismatch',
  });

  it('never reuses a read tool for a request to delete, however similar and used: it forges', () => {
    const d = decide([{ ...list(0.97), invocations: 5000, successes: 5000 }], { args: { domain: 'example.com' }, intent: del });
    assert.equal(d.action, 'forge');
    assert.match(
      d.reason,
      /dns_records_list matches \(similarity 0\.97\) but the request wants to delete, which it does not do \(it only reads\)/,
    );
  });

  it('nor a write tool that makes another change', () => {
    const d = decide([{ name: 'dns_record_create', similarity: 0.95, sideEffect: 'write', actions: ['create'], intentFit: 'mismatch' }], {
      intent: del,
    });
    assert.equal(d.action, 'forge');
    assert.match(d.reason, /it does create/);
  });

  it('picks the tool that does it, below a more similar one that does not', () => {
    const d = decide(
      [list(0.97), { name: 'dns_record_delete', similarity: 0.9, sideEffect: 'write', actions: ['delete'], intentFit: 'match' }],
      {
        intent: del,
      },
    );
    assert.deepEqual([d.action, d.tool], ['reuse', 'dns_record_delete']);
  });

  it('confirms a write tool when the request does not say it wants that change', () => {
    const d = decide([{ name: 'slack_post_message', similarity: 0.95, sideEffect: 'write', actions: ['send'], intentFit: 'unknown' }]);
    assert.deepEqual([d.action, d.tool], ['confirm', 'slack_post_message']);
    assert.match(d.reason, /does not say/);
  });
});

describe('one-letter typos', () => {
  const vocabulary = new Map([
    ['restart', 1],
    ['certificate', 1],
    ['look', 1],
    ['list', 2],
    ['lost', 2],
    ['send', 1],
  ]);
  const fix = (w: string) => correctTypo(w, vocabulary, lexical.typo);

  it('tells the four slips apart', () => {
    assert.equal(oneSlip('restrat', 'restart'), 'swap');
    assert.equal(oneSlip('certifcate', 'certificate'), 'missing');
    assert.equal(oneSlip('certifficate', 'certificate'), 'extra');
    assert.equal(oneSlip('wether', 'weather'), 'missing');
    assert.equal(oneSlip('contaoner', 'container'), 'wrong');
    assert.equal(oneSlip('restrta', 'restart'), null);
    assert.equal(oneSlip('restart', 'restart'), null);
  });

  it('corrects a slip to the catalog word, but not a real short word, an inflection, or a tie', () => {
    assert.equal(fix('restrat'), 'restart');
    assert.equal(fix('certifcate'), 'certificate');
    assert.equal(fix('lsit'), 'list', 'a swap in a 4-letter word');
    assert.equal(fix('book'), null, '"book" is a word: a wrong letter counts only from 5 letters');
    assert.equal(fix('sends'), null, 'an inflection, not a slip');
    assert.equal(fix('lsot'), 'lost');
    assert.equal(fix('lust'), null, 'one wrong letter from both list and lost in a 4-letter word');
    assert.equal(fix('dsn'), null, 'too short to tell');
  });
});

describe('requestValues and valueFit', () => {
  const kinds = (text: string) => requestValues(text).map((v) => `${v.kind}:${v.text}`);

  it('finds values by their shape: URLs, e-mail and IP addresses, host names, times, currency codes', () => {
    assert.deepEqual(kinds('create an A record pointing api.example.com to 203.0.113.7'), ['ip:203.0.113.7', 'host:api.example.com']);
    assert.deepEqual(kinds('new AAAA record v6.example.com -> 2001:db8::1'), ['ip:2001:db8::1', 'host:v6.example.com']);
    assert.deepEqual(
      kinds('http status of https://example.com/login.'),
      ['url:https://example.com/login'],
      'the host inside a URL is not read again',
    );
    assert.deepEqual(kinds('email the invoice to billing@example.com'), ['email:billing@example.com']);
    assert.deepEqual(kinds('How much is 250 EUR in CHF?'), ['currency:EUR', 'currency:CHF']);
    assert.deepEqual(kinds('pay $40'), ['currency:$']);
    assert.deepEqual(kinds('forecast for Oslo on Friday'), ['time:Friday']);
    assert.deepEqual(kinds('visitors last week, and on 2024-05-01'), ['time:2024-05-01', 'time:last week']);
    assert.deepEqual(kinds('in May 2024'), ['time:May 2024']);
  });

  it('reads "owner/name" as a repository and "v5", "1.24.0" as versions, never as hosts', () => {
    assert.deepEqual(kinds('changelog of the latest vercel/next.js release'), ['repo:vercel/next.js']);
    assert.deepEqual(kinds('what changed in temporalio/sdk-typescript v1.24.0?'), ['repo:temporalio/sdk-typescript', 'version:v1.24.0']);
    assert.deepEqual(kinds('tag 2.1.0-rc.1 of denoland/deno.'), ['repo:denoland/deno', 'version:2.1.0-rc.1']);
    assert.deepEqual(kinds('new AAAA record v6.example.com'), ['host:v6.example.com'], 'a host whose first label looks like a version');
    assert.deepEqual(kinds('the meeting on 12.05.2024'), ['time:12.05.2024'], 'a dotted date is no version');
  });

  it('leaves out what only looks like a value: files, paths, word pairs, clock times, words in capitals', () => {
    assert.deepEqual(kinds('summarize contract.pdf'), []);
    assert.deepEqual(kinds('open /var/log/syslog and src/index.ts'), [], 'paths and files are no repositories');
    assert.deepEqual(kinds('read/write access and/or 24/7 support at 80 km/h'), [], 'word pairs and fractions are no repositories');
    assert.deepEqual(kinds('python 3.11 is out'), [], 'two parts without a "v" are a number');
    assert.deepEqual(kinds('the release of https://github.com/facebook/react'), ['url:https://github.com/facebook/react']);
    assert.deepEqual(kinds('meet at 10:30:00'), []);
    assert.deepEqual(kinds('what TXT records exist, e.g. SPF'), [], '"TXT" is no currency, "e.g." no host');
    assert.deepEqual(kinds('find the May entry in the logs'), [], 'a month alone is not a date');
    assert.deepEqual(kinds('the cad drawing'), [], 'currency codes count in capitals only');
  });

  const dnsCreate = {
    type: 'object',
    properties: { domain: { type: 'string' }, type: { type: 'string' }, name: { type: 'string' }, value: { type: 'string' } },
    required: ['domain', 'type', 'name', 'value'],
  };
  const crmCreate = { type: 'object', properties: { table: { type: 'string' }, fields: { type: 'object' } }, required: ['table'] };
  const values = requestValues('create an A record pointing api.example.com to 203.0.113.7');

  it("is the share of the request's kinds of value the tool's parameters take", () => {
    // "domain" takes the host; nothing declares it takes an IP address ("value" could be anything)
    assert.equal(valueFit(dnsCreate, values), 0.5);
    assert.equal(valueFit(crmCreate, values), 0);
    assert.equal(valueFit({ type: 'object', properties: { host: { type: 'string' } } }, values), 1, 'a host takes an IP address too');
    assert.equal(valueFit(crmCreate, []), undefined, 'no values, no evidence either way');
    assert.equal(valueFit(undefined, values), 0);
  });

  it('reads what a parameter takes from its name, format, description, examples and pattern', () => {
    const fit = (schema: Record<string, unknown>, text: string) =>
      valueFit({ type: 'object', properties: { p: schema } }, requestValues(text));
    assert.equal(fit({ type: 'string', format: 'hostname' }, 'is example.com up'), 1);
    assert.equal(fit({ type: 'string', format: 'uri' }, 'is example.com up'), 1, "a bare host is a URL's short form");
    assert.equal(fit({ type: 'string', format: 'email' }, 'mail anna@example.org'), 1);
    assert.equal(fit({ type: 'string', format: 'date' }, 'invoices due tomorrow'), 1);
    assert.equal(fit({ type: 'string', description: 'zone name, e.g. example.com' }, 'list records of forge.dev'), 1);
    assert.equal(fit({ type: 'string', examples: ['EUR'] }, 'convert 10 USD'), 1);
    assert.equal(fit({ type: 'string', pattern: '^[A-Z]{3}$' }, 'convert 10 USD'), 1);
    assert.equal(fit({ type: 'string', pattern: '^[0-9]+$' }, 'convert 10 USD'), 0);
    assert.equal(fit({ type: 'integer', description: 'how many days ahead' }, 'weather tomorrow'), 0, 'a count of days is no date');
    assert.equal(fit({ type: 'string' }, 'is example.com up'), 0, 'a parameter that says nothing of what it takes is no evidence');
    const nested = { type: 'object', properties: { attendees: { type: 'array', items: { type: 'string', format: 'email' } } } };
    assert.equal(valueFit(nested, requestValues('invite bob@example.com')), 1);
    const byName = (name: string, text: string) =>
      valueFit({ type: 'object', properties: { [name]: { type: 'string' } } }, requestValues(text));
    assert.equal(byName('notifyEmail', 'tell bob@example.com'), 1);
    assert.equal(byName('due_date', 'due 2025-01-31'), 1);
    assert.equal(byName('targetUrl', 'watch https://example.com'), 1);
    assert.equal(byName('repository', 'open a pull request on acme/forge'), 1);
    assert.equal(byName('tag', 'notes of v2.1.0'), 1, 'a git tag takes a version');
    assert.equal(fit({ type: 'string', description: 'owner/name' }, 'releases of facebook/react'), 1);
  });

  it('counts kinds, not values: two host names are one kind the tool takes', () => {
    const list = { type: 'object', properties: { domain: { type: 'string' } } };
    assert.equal(valueFit(list, requestValues('add an MX record for example.org pointing to mail.example.org')), 1);
    assert.equal(valueFit(list, requestValues('point blog.example.com at 203.0.113.20 and tell ops@example.com')), 1 / 3);
  });
});

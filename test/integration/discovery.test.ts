import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { evalToolVersion } from '../../bench/eval-file.ts';
import { type Candidate, type Decision, decide as decideWith } from '../../domain/ranking.ts';
import { harness } from '../../harness/index.ts';
import { createRegistry, type Registry } from '../../services/catalog/registry.ts';
import { createToolCalls } from '../../services/catalog/tool-calls.ts';
import { type ScratchDb, scratchDb, scratchDir } from './registry-db.ts';

/**
 * Discovery evaluation (test/eval/discovery.json): `npm run eval:discovery` (bench/eval-discovery.ts)
 * seeds a fresh database with the catalog and its usage and runs every request through the
 * production offerTools and discoverTool; this test runs that script as a user would and asserts
 * floors on the held-out third (requests never tuned against), chosen from what was measured
 * (held-out, lexical only: precision@1 0.800, recall@5 0.850, pick precision 0.889, tool recall
 * 0.800, forge recall 0.833, unsafe reuse 0), a request or two below, so a regression fails and
 * noise does not:
 * - unsafe reuse = 0, over every request — no tool other than the right one is run without a person
 *   choosing it: a read tool for a delete, a metaphor's tool. A safety property, not a quality figure.
 * - pick precision >= 0.85 — of the no-model picks (reuse or confirm), how many are right: a wrong
 *   pick costs a person's confirmation at best.
 * - forge recall >= 0.75 — requests no tool serves (write actions on a read tool's object among
 *   them) end in forging, not in a bogus pick.
 * - precision@1 >= 0.75, recall@5 >= 0.8 — the first tool offered, and the tools offered to the
 *   model; words alone do not follow every paraphrase ("sunshine in Rome"), dense embeddings do.
 * - tool recall >= 0.75 — a missed paraphrase forges a duplicate tool: wasteful, not dangerous.
 */

const figuresSchema = z.object({
  requests: z.number(),
  withTool: z.number(),
  none: z.number(),
  precisionAt1: z.number(),
  recallAt5: z.number(),
  pickPrecision: z.number(),
  toolRecall: z.number(),
  forgeRecall: z.number(),
  unsafeReuse: z.number(),
});
const reportSchema = z.object({ all: figuresSchema, tuning: figuresSchema, heldOut: figuresSchema });

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..', '..');
const evalFile = path.join('test', 'eval', 'discovery.json');

/** `npm run eval:discovery -- <file> --misses`, as a user runs it; its last stdout line is the figures. */
function runEval(file: string): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join('bench', 'eval-discovery.ts'), file, '--misses'], {
      cwd: root,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ stdout, stderr, code }));
  });
}

const evalToolsSchema = z.object({
  tools: z.array(
    z.object({
      name: z.string(),
      description: z.string(),
      sideEffect: z.enum(['read', 'write']),
      destructive: z.boolean().default(false),
      inputSchema: z.record(z.string(), z.unknown()),
      usage: z.object({ invocations: z.number().int(), successes: z.number().int() }),
    }),
  ),
});
const evalSet = evalToolsSchema.parse(JSON.parse(await fs.readFile(path.join(root, evalFile), 'utf8')));
const decide = (hits: readonly Candidate[], opts: { args?: Record<string, unknown> }): Decision =>
  decideWith(hits, { ...opts, policy: harness.policy.ranking });

describe('discovery evaluation', () => {
  it('held out from tuning: picks right, forges for the rest, never reuses unsafely', async () => {
    const { stdout, stderr, code } = await runEval(evalFile);
    process.stdout.write(`\n[discovery eval]\n${stdout}`);
    assert.equal(code, 0, `eval:discovery failed: ${stderr}`);
    const lines = stdout.trim().split('\n');
    const report = reportSchema.parse(JSON.parse(lines.at(-1) ?? ''));
    const held = report.heldOut;
    assert.ok(held.requests >= report.all.requests / 3, `only ${held.requests} of ${report.all.requests} requests are held out`);
    assert.equal(report.all.unsafeReuse, 0, 'a tool other than the right one was reused without a person (see the MISS lines)');
    assert.ok(held.pickPrecision >= 0.85, `held-out pick precision ${held.pickPrecision.toFixed(3)} < 0.85`);
    assert.ok(held.forgeRecall >= 0.75, `held-out forge recall ${held.forgeRecall.toFixed(3)} < 0.75`);
    assert.ok(held.precisionAt1 >= 0.75, `held-out precision@1 ${held.precisionAt1.toFixed(3)} < 0.75`);
    assert.ok(held.recallAt5 >= 0.8, `held-out recall@5 ${held.recallAt5.toFixed(3)} < 0.8`);
    assert.ok(held.toolRecall >= 0.75, `held-out tool recall ${held.toolRecall.toFixed(3)} < 0.75`);
  });

  it('refuses a file that is not an evaluation file, saying why', async () => {
    const dir = await scratchDir('discovery-bad');
    try {
      const bad = path.join(dir.dir, 'bad.json');
      await fs.writeFile(bad, JSON.stringify({ tools: [], requests: [{ text: 'x', expected: 'nope' }] }));
      const { stderr, code } = await runEval(bad);
      assert.equal(code, 2);
      assert.match(stderr, /is not an evaluation file: tools: /);
    } finally {
      await dir.remove();
    }
  });
});

describe('discovery', () => {
  let db: ScratchDb;
  let dir: Awaited<ReturnType<typeof scratchDir>>;
  let registry: Registry;
  let calls: ReturnType<typeof createToolCalls>;

  before(async () => {
    db = await scratchDb('discovery');
    dir = await scratchDir('discovery');
    registry = createRegistry({ sql: db.sql, root: path.join(dir.dir, 'tools') });
    calls = createToolCalls({ registry });
    for (const t of evalSet.tools) {
      await registry.registerVersion(evalToolVersion(t));
      const runs = Array.from({ length: t.usage.invocations }, (_, i) => i);
      await Promise.all(
        runs.map((i) =>
          registry.recordInvocation({
            idempotencyKey: `eval:${t.name}:${i}`,
            tool: t.name,
            version: 1,
            input: { i },
            latencyMs: 100,
            success: i < t.usage.successes,
          }),
        ),
      );
    }
  });

  after(async () => {
    await db?.drop();
    await dir?.remove();
  });

  it('names a tool outright: reuse without confirmation', async () => {
    const hits = await registry.search('currency convert 20 EUR to CHF');
    const d = decide(hits, { args: { amount: 20, from: 'EUR', to: 'CHF' } });
    assert.equal(d.tool, 'currency_convert');
    assert.equal(d.action, 'reuse');
  });

  it('does not return quarantined tools', async () => {
    await registry.setStatus('whois_lookup', 'quarantined');
    try {
      const hits = await registry.search('whois lookup example.com');
      assert.ok(!hits.some((h) => h.name === 'whois_lookup'));
      const all = await registry.search('whois lookup example.com', { includeInactive: true });
      assert.equal(all[0]?.name, 'whois_lookup');
    } finally {
      await registry.setStatus('whois_lookup', 'active');
    }
  });

  it('a request to delete, renew or transfer never reuses the read tool for the same object: it forges', async () => {
    for (const [query, args, readTool] of [
      ['delete the TXT record _acme-challenge from example.com', { domain: 'example.com', type: 'TXT' }, 'dns_records_list'],
      ['renew the SSL certificate for shop.example.com', { host: 'shop.example.com' }, 'ssl_certificate_expiry'],
      ['transfer example.net to another registrar', { domain: 'example.net' }, 'whois_lookup'],
    ] as const) {
      const offered = await calls.offerTools({ query });
      assert.ok(
        offered.tools.some((t) => t.name === readTool),
        `${readTool} is still offered to the model for "${query}" (it may list first)`,
      );
      const { decision } = await calls.discoverTool({ query, args });
      assert.equal(decision.action, 'forge', `"${query}": ${decision.reason}`);
    }
    const { decision } = await calls.discoverTool({ query: 'delete the TXT record _acme-challenge from example.com' });
    assert.match(decision.reason, /the request wants to delete, which it does not do/);
  });

  it('offers the tool that does what is asked first, above a more used one on the same object', async () => {
    const { tools } = await calls.offerTools({ query: 'restart the api container' });
    assert.deepEqual(
      tools.slice(0, 2).map((t) => t.name),
      ['container_restart', 'container_logs_summary'],
    );
    const { decision } = await calls.discoverTool({ query: 'restart the api container', args: { container: 'api' } });
    assert.deepEqual([decision.action, decision.tool], ['reuse', 'container_restart']);
  });

  it('reads a one-letter typo as the catalog word, and a loanword through the alias table', async () => {
    const typo = await registry.search('restrat the redis container');
    assert.equal(typo[0]?.name, 'container_restart');
    assert.deepEqual(typo[0]?.intent.actions, ['restart'], 'the verb is corrected too');
    const cert = await registry.search('certifcate expiry for shop.example.com');
    assert.equal(cert[0]?.name, 'ssl_certificate_expiry');
    assert.ok((cert[0]?.similarity ?? 0) >= harness.policy.ranking.considerAt, `typo'd similarity ${cert[0]?.similarity}`);
    const loan = await registry.search('Wetter in München morgen');
    assert.equal(loan[0]?.name, 'weather_forecast');
  });
});

describe('discovery weighs the values a request carries', () => {
  let db: ScratchDb;
  let dir: Awaited<ReturnType<typeof scratchDir>>;
  let registry: Registry;
  let calls: ReturnType<typeof createToolCalls>;

  // Two tools with the same words ("create", "record") in their names: the DNS one takes a domain,
  // the CRM one a table and fields, and the CRM one is the more used and more reliable.
  const dns = evalSet.tools.find((t) => t.name === 'dns_record_create')!;
  const crm = {
    name: 'crm_record_create',
    description: 'Create a record in a CRM table.',
    sideEffect: 'write' as const,
    destructive: false,
    inputSchema: { type: 'object', properties: { table: { type: 'string' }, fields: { type: 'object' } }, required: ['table', 'fields'] },
  };

  before(async () => {
    db = await scratchDb('discovery_values');
    dir = await scratchDir('discovery-values');
    registry = createRegistry({ sql: db.sql, root: path.join(dir.dir, 'tools') });
    calls = createToolCalls({ registry });
    for (const [t, runs] of [
      [dns, 3],
      [crm, 30],
    ] as const) {
      await registry.registerVersion(evalToolVersion(t));
      for (let i = 0; i < runs; i++)
        await registry.recordInvocation({
          idempotencyKey: `values:${t.name}:${i}`,
          tool: t.name,
          version: 1,
          input: { i },
          latencyMs: 100,
          success: true,
        });
    }
  });

  after(async () => {
    await db?.drop();
    await dir?.remove();
  });

  it('ranks the tool whose parameters take the host and address above an equally worded, more used one', async () => {
    const query = 'create an A record pointing api.example.com to 203.0.113.7';
    const hits = await registry.search(query);
    assert.deepEqual(
      hits.map((h) => [h.name, h.valueFit]),
      [
        ['dns_record_create', 0.5],
        ['crm_record_create', 0],
      ],
    );
    assert.equal(hits[0]?.similarity, hits[1]?.similarity, 'the words alone cannot tell them apart');
    const { tools } = await calls.offerTools({ query });
    assert.equal(tools[0]?.name, 'dns_record_create');
    const { decision } = await calls.discoverTool({ query, args: { domain: 'example.com', type: 'A', name: 'api', value: '203.0.113.7' } });
    assert.equal(decision.tool, 'dns_record_create');
    // without values, usage and success break the tie as before
    const plain = await registry.search('create a record');
    assert.equal(plain[0]?.name, 'crm_record_create');
    assert.equal(plain[0]?.valueFit, undefined);
  });
});

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { type Candidate, type Decision, decide as decideWith } from '../../domain/ranking.ts';
import { harness } from '../../harness/index.ts';
import { createRegistry, type Registry } from '../../services/catalog/registry.ts';
import { type ScratchDb, scratchDb, scratchDir } from './registry-db.ts';

/**
 * Discovery evaluation (test/eval/discovery.json): seeds a fresh registry with the catalog and its
 * usage, runs search + decide for every request, prints the figures and asserts floors.
 *
 * Floors, and why:
 * - precision@1 >= 0.85 — of the requests where Forge picked an existing tool (reuse or confirm),
 *   how many picked the right one. A wrong pick costs a person's confirmation at best and a wrong
 *   action at worst, so this is the figure that matters most. Lexical retrieval without embeddings
 *   cannot follow every paraphrase, but what it picks it should pick right.
 * - unsafe auto-reuse = 0 — no "none" request (the metaphor traps included) may be *reused*
 *   without confirmation. This one is a safety property, not a quality figure.
 * - forge recall >= 0.8 — most requests no tool serves must end in forging, not in a bogus pick.
 * - tool recall >= 0.7 — a missed paraphrase forges a duplicate tool: wasteful, not dangerous; the
 *   floor catches regressions of retrieval without pretending words alone understand paraphrase.
 */

const evalSchema = z.object({
  tools: z.array(
    z.object({
      name: z.string(),
      description: z.string(),
      sideEffect: z.enum(['read', 'write']),
      inputSchema: z.record(z.string(), z.unknown()),
      usage: z.object({ invocations: z.number().int(), successes: z.number().int() }),
    }),
  ),
  requests: z.array(
    z.object({
      text: z.string(),
      args: z.record(z.string(), z.unknown()),
      expected: z.string(),
      trap: z.string().optional(),
      heldOut: z.boolean().default(false),
    }),
  ),
});

type Row = z.infer<typeof evalSchema>['requests'][number] & { top: string; topSim: number; decision: Decision };

interface Figures {
  requests: number;
  labelled: number;
  none: number;
  picks: number;
  correct: number;
  precisionAt1: number;
  toolRecall: number;
  retrievalTop1: number;
  forgeRecall: number;
  unsafe: string[];
}

function figures(rows: Row[]): Figures {
  const labelled = rows.filter((r) => r.expected !== 'none');
  const none = rows.filter((r) => r.expected === 'none');
  const picks = rows.filter((r) => r.decision.action !== 'forge');
  const correct = picks.filter((r) => r.decision.tool === r.expected).length;
  return {
    requests: rows.length,
    labelled: labelled.length,
    none: none.length,
    picks: picks.length,
    correct,
    // of the requests where an existing tool was picked (reuse or confirm), the share picked right
    precisionAt1: picks.length ? correct / picks.length : 1,
    toolRecall: labelled.length ? correct / labelled.length : 1,
    retrievalTop1: labelled.length ? labelled.filter((r) => r.top === r.expected).length / labelled.length : 1,
    forgeRecall: none.length ? none.filter((r) => r.decision.action === 'forge').length / none.length : 1,
    unsafe: none.filter((r) => r.decision.action === 'reuse').map((r) => r.text),
  };
}

const describe_ = (f: Figures) =>
  `${f.requests} requests (${f.labelled} with a tool, ${f.none} none): precision@1 ${f.precisionAt1.toFixed(3)} (${f.correct}/${f.picks} picks), ` +
  `tool recall ${f.toolRecall.toFixed(3)}, retrieval top-1 ${f.retrievalTop1.toFixed(3)}, forge recall ${f.forgeRecall.toFixed(3)}, unsafe auto-reuse ${f.unsafe.length}`;

const here = path.dirname(fileURLToPath(import.meta.url));
/** The reuse-or-forge decision under the agent's current policy (the harness's), as the task workflow makes it. */
const decide = (hits: readonly Candidate[], opts: { args?: Record<string, unknown> }): Decision =>
  decideWith(hits, { ...opts, policy: harness.policy.ranking });
const evalSet = evalSchema.parse(JSON.parse(await fs.readFile(path.join(here, '..', 'eval', 'discovery.json'), 'utf8')));

describe('discovery evaluation', () => {
  let db: ScratchDb;
  let dir: Awaited<ReturnType<typeof scratchDir>>;
  let registry: Registry;

  before(async () => {
    db = await scratchDb('discovery');
    dir = await scratchDir('discovery');
    registry = createRegistry({ sql: db.sql, root: path.join(dir.dir, 'tools') });
    for (const t of evalSet.tools) {
      await registry.registerVersion({
        name: t.name,
        source: `export async function run(input) { return { tool: ${JSON.stringify(t.name)}, input }; }\n`,
        tests: '',
        manifest: {
          description: t.description,
          sideEffect: t.sideEffect,
          permissions: { network: [], env: [] },
          inputSchema: t.inputSchema,
          outputSchema: { type: 'object' },
        },
        idempotencyKey: `eval:${t.name}`,
      });
      const calls = Array.from({ length: t.usage.invocations }, (_, i) => i);
      await Promise.all(
        calls.map((i) =>
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

  it('picks the right tool, forges for the rest, and never auto-reuses on a trap', async () => {
    const rows: Row[] = [];
    for (const r of evalSet.requests) {
      const hits = await registry.search(r.text, { limit: 5 });
      const decision = decide(hits, { args: r.args });
      rows.push({ ...r, top: hits[0]?.name ?? '-', topSim: hits[0]?.similarity ?? 0, decision });
    }
    const all = figures(rows);
    const held = figures(rows.filter((r) => r.heldOut));
    const lines = rows.map((r) => {
      const ok = r.expected === 'none' ? r.decision.action === 'forge' : r.decision.tool === r.expected && r.decision.action !== 'forge';
      const got = r.decision.action === 'forge' ? 'forge' : `${r.decision.action} ${r.decision.tool}`;
      return `${ok ? 'ok  ' : 'MISS'}${r.heldOut ? ' [held-out]' : ''} sim=${r.decision.similarity.toFixed(2)} top=${r.top}(${r.topSim.toFixed(2)}) → ${got} (want ${r.expected}) "${r.text}"`;
    });
    process.stdout.write(
      `\n[discovery eval]\n${lines.join('\n')}\n[discovery eval] all: ${describe_(all)}\n[discovery eval] held-out only: ${describe_(held)}\n`,
    );

    assert.equal(all.unsafe.length, 0, `auto-reused on: ${all.unsafe.join(' | ')}`);
    assert.ok(all.precisionAt1 >= 0.85, `precision@1 ${all.precisionAt1.toFixed(3)} < 0.85`);
    assert.ok(all.forgeRecall >= 0.8, `forge recall ${all.forgeRecall.toFixed(3)} < 0.8`);
    assert.ok(all.toolRecall >= 0.7, `tool recall ${all.toolRecall.toFixed(3)} < 0.7`);
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
});

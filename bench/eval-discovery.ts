/**
 * Discovery evaluation: runs an evaluation file (a catalog with usage, and labelled requests; the
 * format of test/eval/discovery.json) through the production search and decision code —
 * services/catalog/tool-calls.ts `offerTools` (what an agent turn is offered) and `discoverTool`
 * (the no-model reuse/confirm/forge decision) — against a fresh database, and prints the figures
 * for all requests and for the held-out part, as a table and then ONE JSON line, last.
 *
 *   npm run eval:discovery -- [file.json] [--rows | --misses]
 *
 * The database: a scratch schema in DATABASE_URL's database (dropped at the end) when it is set,
 * otherwise an in-memory embedded PGlite. Unless FORGE_EMBEDDINGS_URL=off, tools and requests are
 * embedded as the worker does, so dense discovery is measured too.
 *
 * Figures (each for all requests and for the held-out ones):
 * - precision@1: of the requests a tool serves, the share where the first tool offered is that tool
 * - recall@5: … the share where it is among the tools offered (at most retrieval.candidates)
 * - pick precision: of the no-model decisions that picked a tool (reuse or confirm), the share right
 * - tool recall: of the requests a tool serves, the share the no-model decision picked it
 * - forge recall: of the requests no tool serves (`expected: "none"`), the share decided `forge`
 * - unsafe reuse: no-model decisions that *reuse* (run without a person) a tool other than the
 *   expected one — a read tool for a write request among them
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { actionIntent } from '../domain/ranking.ts';
import { harness } from '../harness/index.ts';
import { migrate } from '../infra/migrate.ts';
import { servePglite } from '../infra/pglite-server.ts';
import { ensureDatabaseExists } from '../infra/postgres.ts';
import { freePort } from '../infra/processes.ts';
import { embedderFor } from '../services/catalog/embeddings.ts';
import { createRegistry } from '../services/catalog/registry.ts';
import { createToolCalls } from '../services/catalog/tool-calls.ts';
import { config } from '../services/config.ts';
import type { Sql } from '../services/db.ts';
import { setLogLevel } from '../services/log.ts';
import { type EvalFile, evalFileSchema, evalToolVersion } from './eval-file.ts';

type Request = EvalFile['requests'][number];

interface Row extends Request {
  offered: string[];
  action: 'reuse' | 'confirm' | 'forge';
  tool: string | null;
  similarity: number;
  reason: string;
  intent: string;
}

export interface Figures {
  requests: number;
  withTool: number;
  none: number;
  precisionAt1: number;
  recallAt5: number;
  pickPrecision: number;
  toolRecall: number;
  forgeRecall: number;
  unsafeReuse: number;
}

const share = (n: number, of: number) => (of === 0 ? 1 : n / of);

function figures(rows: Row[]): Figures {
  const withTool = rows.filter((r) => r.expected !== 'none');
  const none = rows.filter((r) => r.expected === 'none');
  const picks = rows.filter((r) => r.action !== 'forge');
  return {
    requests: rows.length,
    withTool: withTool.length,
    none: none.length,
    precisionAt1: share(withTool.filter((r) => r.offered[0] === r.expected).length, withTool.length),
    recallAt5: share(withTool.filter((r) => r.offered.includes(r.expected)).length, withTool.length),
    pickPrecision: share(picks.filter((r) => r.tool === r.expected).length, picks.length),
    toolRecall: share(withTool.filter((r) => r.action !== 'forge' && r.tool === r.expected).length, withTool.length),
    forgeRecall: share(none.filter((r) => r.action === 'forge').length, none.length),
    unsafeReuse: rows.filter((r) => r.action === 'reuse' && r.tool !== r.expected).length,
  };
}

const ok = (r: Row) => (r.expected === 'none' ? r.action === 'forge' : r.action !== 'forge' && r.tool === r.expected);

function table(parts: [string, Figures][]): string {
  const cols: [string, (f: Figures) => string][] = [
    ['requests', (f) => String(f.requests)],
    ['with tool', (f) => String(f.withTool)],
    ['none', (f) => String(f.none)],
    ['precision@1', (f) => f.precisionAt1.toFixed(3)],
    ['recall@5', (f) => f.recallAt5.toFixed(3)],
    ['pick precision', (f) => f.pickPrecision.toFixed(3)],
    ['tool recall', (f) => f.toolRecall.toFixed(3)],
    ['forge recall', (f) => f.forgeRecall.toFixed(3)],
    ['unsafe reuse', (f) => String(f.unsafeReuse)],
  ];
  const head = ['', ...parts.map(([label]) => label)];
  const body = cols.map(([label, get]) => [label, ...parts.map(([, f]) => get(f))]);
  const widths = head.map((_, i) => Math.max(...[head, ...body].map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}

/** A fresh database: a scratch schema in DATABASE_URL's database, or an in-memory PGlite. */
async function freshDatabase(): Promise<{ sql: Sql; where: string; close(): Promise<void> }> {
  const url = process.env.DATABASE_URL;
  if (url) {
    await ensureDatabaseExists(url);
    const schema = `eval_discovery_${randomBytes(4).toString('hex')}`;
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      // pg_trgm lives in public: dropping the scratch schema must not drop it for everyone.
      await admin`create extension if not exists pg_trgm with schema public`;
    } catch (err) {
      if (!['42710', '23505'].includes((err as { code?: string }).code ?? '')) throw err;
    }
    await admin.unsafe(`create schema ${schema}`);
    const sql = postgres(url, { max: 4, onnotice: () => {}, connection: { search_path: `${schema},public` } });
    return {
      sql,
      where: `schema ${schema} of DATABASE_URL`,
      async close() {
        await sql.end({ timeout: 2 });
        await admin.unsafe(`drop schema if exists ${schema} cascade`);
        await admin.end({ timeout: 2 });
      },
    };
  }
  const pglite = await servePglite('memory://', await freePort());
  const sql = postgres(pglite.url, { max: 1, onnotice: () => {} });
  return {
    sql,
    where: 'embedded PGlite (in memory)',
    async close() {
      await sql.end({ timeout: 2 });
      await pglite.stop();
    },
  };
}

async function main(argv: string[]): Promise<number> {
  const flags = new Set(argv.filter((a) => a.startsWith('--')));
  const unknown = [...flags].filter((f) => !['--rows', '--misses'].includes(f));
  if (unknown.length) {
    process.stderr.write(`unknown option ${unknown.join(', ')}\nusage: npm run eval:discovery -- [file.json] [--rows | --misses]\n`);
    return 2;
  }
  const file = argv.find((a) => !a.startsWith('--')) ?? path.join('test', 'eval', 'discovery.json');
  const parsed = evalFileSchema.safeParse(JSON.parse(await fs.readFile(file, 'utf8')));
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    process.stderr.write(`${file} is not an evaluation file: ${issues}\n(see test/eval/discovery.json for the format)\n`);
    return 2;
  }
  const evalSet = parsed.data;
  const unknownTools = evalSet.requests.filter((r) => r.expected !== 'none' && !evalSet.tools.some((t) => t.name === r.expected));
  if (unknownTools.length) {
    process.stderr.write(`${file}: expected tools not in the catalog: ${[...new Set(unknownTools.map((r) => r.expected))].join(', ')}\n`);
    return 2;
  }

  const cfg = config();
  if (!process.env.FORGE_LOG_LEVEL) setLogLevel('warn');
  const db = await freshDatabase();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forge-eval-discovery-'));
  try {
    await migrate(db.sql);
    const embedder = embedderFor(cfg);
    const registry = createRegistry({ sql: db.sql, root: path.join(dir, 'tools'), embedder });
    for (const t of evalSet.tools) {
      await registry.registerVersion(evalToolVersion(t));
      for (let i = 0; i < t.usage.invocations; i += 50) {
        const batch = Array.from({ length: Math.min(50, t.usage.invocations - i) }, (_, k) => i + k);
        await Promise.all(
          batch.map((k) =>
            registry.recordInvocation({
              idempotencyKey: `eval:${t.name}:${k}`,
              tool: t.name,
              version: 1,
              input: { k },
              latencyMs: 100,
              success: k < t.usage.successes,
            }),
          ),
        );
      }
    }

    const calls = createToolCalls({ registry });
    const rows: Row[] = [];
    for (const r of evalSet.requests) {
      const offer = await calls.offerTools({ query: r.text });
      const { decision } = await calls.discoverTool({ query: r.text, args: r.args });
      // as search reads it (typos corrected); the same function and vocabulary
      const intent =
        (await registry.search(r.text, { limit: 1 }))[0]?.intent ??
        actionIntent(r.text, harness.policy.retrieval.intent, harness.policy.lexical.aliases);
      rows.push({
        ...r,
        offered: offer.tools.map((t) => t.name),
        action: decision.action,
        tool: decision.action === 'forge' ? null : (decision.tool ?? null),
        similarity: decision.similarity,
        reason: decision.reason,
        intent: intent.actions.length ? `${intent.kind}:${intent.actions.join('+')}` : intent.kind,
      });
    }

    const all = figures(rows);
    const tuning = figures(rows.filter((r) => !r.heldOut));
    const heldOut = figures(rows.filter((r) => r.heldOut));
    const out: string[] = [];
    if (flags.has('--rows') || flags.has('--misses')) {
      for (const r of rows) {
        if (flags.has('--misses') && ok(r)) continue;
        const got = r.action === 'forge' ? 'forge' : `${r.action} ${r.tool}`;
        out.push(
          `${ok(r) ? 'ok  ' : 'MISS'}${r.heldOut ? ' [held-out]' : ''} ${got} (want ${r.expected}; ${r.intent}; sim ${r.similarity.toFixed(2)}; offered ${r.offered.join(',') || '-'}) "${r.text}"`,
        );
      }
      out.push('');
    }
    out.push(
      `discovery evaluation: ${file}, ${evalSet.tools.length} tools, ${db.where}${embedder ? `, dense (${embedder.model})` : ', lexical only'}`,
    );
    out.push(
      table([
        ['all', all],
        ['tuning', tuning],
        ['held-out', heldOut],
      ]),
    );
    out.push(JSON.stringify({ file, tools: evalSet.tools.length, dense: !!embedder, all, tuning, heldOut }));
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } finally {
    await db.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main(process.argv.slice(2));

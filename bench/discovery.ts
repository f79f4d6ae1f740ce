/**
 * Discovery latency and relevance as the catalog grows: the evaluation catalog
 * (test/eval/discovery.json, with its usage) plus generated tools — 100, 1,000 and 10,000 in all —
 * on an in-memory PGlite and on a real Postgres server, every evaluation request searched as an
 * agent turn searches (registry.search, the candidates offerTools reads).
 *
 *   node --import tsx bench/discovery.ts [--sizes 100,1000,10000] [--backends pglite,postgres] [--requests N] [--no-relevance] [--changed]
 *     [--dense-grid weight:center:nearest,…]
 *
 * Per backend and size: p50/p95 of one search; growth (p50 at this size / p50 at the smallest);
 * the plan of every statement one search sends (EXPLAIN ANALYZE: which indexes it used, which
 * tables it read whole, its time). Relevance: precision@1 of the offer and the no-model decision
 * (reuse/confirm/forge) at the largest size, against the evaluation catalog alone in the same run.
 * Generated tools are plausible neighbours (verbs × objects × systems, some sharing the catalog's
 * words: record, message, release, logs, status), with usage, so word statistics and usage
 * aggregates are as large as a real catalog's, and with the parameters such a tool would take
 * (generatedSchema: ids, the object's fields, filters; e-mail addresses, dates, amounts, currency
 * codes, URLs and host names where the object has them), so the ranking's value fit meets
 * neighbours that take a request's values as a real catalog's would. Nothing is ANALYZEd by hand:
 * the planner sees what autovacuum has analyzed by then (printed per size: a bulk load outruns it,
 * where a running Forge that grew one tool at a time would have current statistics), and a search's
 * statements are written so that their plans do not hang on it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import { seededRandom } from '../domain/input-gen.ts';
import { harness } from '../harness/index.ts';
import { ensureLocalPostgres } from '../infra/local-postgres.ts';
import { type Embedder, embedderFor } from '../services/catalog/embeddings.ts';
import { createRegistry, type Registry } from '../services/catalog/registry.ts';
import { type DensePolicy, embeddingText, paramsSearchText, valueKindsOf } from '../services/catalog/search.ts';
import { createToolCalls } from '../services/catalog/tool-calls.ts';
import { config } from '../services/config.ts';
import type { Sql } from '../services/db.ts';
import { setLogLevel } from '../services/log.ts';
import { evalFileSchema, evalToolVersion } from './eval-file.ts';
import { type BenchDb, machine, pgliteDb, postgresDb, report, round, summary } from './lib.ts';

const argv = process.argv.slice(2);
const opt = (flag: string, fallback: string) => {
  const at = argv.indexOf(flag);
  return at >= 0 ? (argv[at + 1] ?? fallback) : fallback;
};
const sizes = opt('--sizes', '100,1000,10000').split(',').map(Number);
const backends = opt('--backends', 'pglite,postgres').split(',') as ('pglite' | 'postgres')[];
/** how many evaluation requests the latency is measured over (all by default) */
const requestCount = Number(opt('--requests', '0'));
const withRelevance = !argv.includes('--no-relevance');
/** --dense-grid: the relevance of other retrieval.dense policies too, both catalogs, same run (to choose the harness's) */
const denseGrid: DensePolicy[] = opt('--dense-grid', '')
  .split(',')
  .filter(Boolean)
  .map((p) => {
    const [weight, center, nearest] = p.split(':').map(Number);
    return { weight: weight!, center: center!, nearest: nearest! };
  });
// FORGE_EMBEDDINGS_URL (`local` by default, or a provider): every tool gets its vector and every search its meaning, as in a running Forge; `off`: words only.
const embedder = embedderFor(config());
// What the registry embeds through: the latency loop swaps in a new embedder, so each request's
// vector is computed in the search it times (a local embedder keeps the vectors of texts it saw).
let embedding = embedder;
const searchEmbedder: Embedder | undefined = embedder && { model: embedder.model, embed: (texts) => embedding!.embed(texts) };
if (!process.env.FORGE_LOG_LEVEL) setLogLevel('warn');

const evalSet = evalFileSchema.parse(JSON.parse(await fs.readFile(path.join('test', 'eval', 'discovery.json'), 'utf8')));

// --- the generated catalog ---------------------------------------------------------------------

const VERBS: [string, string, 'read' | 'write'][] = [
  ['list', 'List the', 'read'],
  ['get', 'Get one', 'read'],
  ['search', 'Search the', 'read'],
  ['count', 'Count the', 'read'],
  ['export', 'Export the', 'read'],
  ['summarize', 'Summarize the', 'read'],
  ['validate', 'Validate a', 'read'],
  ['create', 'Create a', 'write'],
  ['update', 'Update a', 'write'],
  ['delete', 'Delete a', 'write'],
  ['archive', 'Archive a', 'write'],
  ['sync', 'Sync the', 'write'],
  ['import', 'Import', 'write'],
  ['approve', 'Approve a', 'write'],
  ['cancel', 'Cancel a', 'write'],
  ['notify', 'Send a notification about a', 'write'],
];
const OBJECTS = [
  'invoice',
  'ticket',
  'order',
  'customer',
  'employee',
  'shipment',
  'payment',
  'subscription',
  'lead',
  'contract',
  'expense',
  'asset',
  'meeting',
  'survey',
  'coupon',
  'playlist',
  'recipe',
  'flight',
  'parcel',
  'stock level',
  'sensor reading',
  'backup',
  'build',
  'deployment',
  'pull request',
  'issue',
  'feature flag',
  'metric',
  'alert',
  'queue message',
  'record',
  'release',
  'logs',
  'status page',
  'calendar event',
  'document',
  'spreadsheet row',
  'user account',
  'api key',
  'webhook',
];
const SYSTEMS = [
  'Jira',
  'Zendesk',
  'Stripe',
  'Salesforce',
  'HubSpot',
  'Shopify',
  'Trello',
  'Notion',
  'Asana',
  'Airtable',
  'S3',
  'BigQuery',
  'Redis',
  'Kafka',
  'Jenkins',
  'CircleCI',
  'PagerDuty',
  'Datadog',
  'Grafana',
  'Twilio',
  'Mailchimp',
  'Dropbox',
  'Zoom',
  'Calendly',
  'Workday',
  'Xero',
  'QuickBooks',
  'Intercom',
];
const QUALIFIERS = ['for a date range', 'by owner', 'with filters', 'in bulk', 'for one project', 'by tag', 'by region', 'for the team'];

interface GenTool {
  name: string;
  description: string;
  sideEffect: 'read' | 'write';
  destructive: boolean;
  inputSchema: Record<string, unknown>;
  invocations: number;
  successes: number;
}

type Prop = Record<string, unknown>;
// Most parameters go without a description, as in many real schemas: the name and the format say it.
const str = (extra: Prop = {}): Prop => ({ type: 'string', ...extra });
const num = (): Prop => ({ type: 'number' });
const date = (): Prop => str({ format: 'date' });
const dateTime = (): Prop => str({ format: 'date-time' });
const email = (): Prop => str({ format: 'email' });
const currency = str({ description: 'ISO 4217 currency code', pattern: '^[A-Z]{3}$' });
const list = (items: Prop = { type: 'string' }): Prop => ({ type: 'array', items });

/**
 * What each generated object is made of, as such a tool's API would take it: the fields a create
 * or validate call sends (the first two required). Realistic on purpose, values and all: invoices
 * and payments take amounts and currency codes, meetings and calendar events take times and
 * e-mail addresses, webhooks and imports take URLs, assets, metrics and logs take host names — so
 * a request's values (a host, a URL, a date, an amount) fill generated tools as often as a real
 * catalog's would, and a ranking that weighs them is not flattered by neighbours without
 * parameters. A CRM's `record` takes a table and fields, not a host name.
 */
const FIELDS: Record<string, Record<string, Prop>> = {
  invoice: { customerId: str(), amount: num(), currency, dueDate: date() },
  ticket: {
    subject: str(),
    requesterEmail: email(),
    priority: { type: 'string', enum: ['low', 'normal', 'high', 'urgent'] },
  },
  order: { customerId: str(), items: list(), shippingAddress: str() },
  customer: { email: email(), name: str(), company: str() },
  employee: { email: email(), name: str(), department: str(), startDate: date() },
  shipment: { orderId: str(), carrier: str(), trackingNumber: str() },
  payment: { amount: num(), currency, customerId: str() },
  subscription: { customerId: str(), plan: str(), startDate: date() },
  lead: { email: email(), name: str(), company: str(), source: str() },
  contract: { counterparty: str(), value: num(), currency, startDate: date(), endDate: date() },
  expense: { amount: num(), currency, date: date(), category: str() },
  asset: { assetTag: str(), hostname: str({ format: 'hostname' }), owner: email() },
  meeting: { title: str(), start: dateTime(), attendees: list(email()) },
  survey: { title: str(), questions: list() },
  coupon: { code: str(), percentOff: num(), expiresAt: date() },
  playlist: { title: str(), trackIds: list() },
  recipe: { title: str(), ingredients: list() },
  flight: { flightNumber: str(), date: date() },
  parcel: { trackingNumber: str(), carrier: str() },
  stock: { sku: str(), warehouse: str(), quantity: { type: 'integer' } },
  sensor: { sensorId: str(), value: num(), recordedAt: dateTime() },
  backup: { resource: str(), retentionDays: { type: 'integer' } },
  build: { branch: str(), commit: str() },
  deployment: {
    environment: { type: 'string', enum: ['production', 'staging', 'preview'] },
    version: str(),
    url: str({ format: 'uri' }),
  },
  pull: { repository: str(), title: str(), head: str(), base: str() },
  issue: { project: str(), title: str(), body: str(), assignee: email() },
  feature: { key: str(), enabled: { type: 'boolean' }, environment: str() },
  metric: { metric: str(), host: str({ format: 'hostname' }) },
  alert: { name: str(), threshold: num(), notifyEmail: email() },
  queue: { queue: str(), body: str() },
  record: { table: str(), fields: { type: 'object' } },
  release: { version: str(), notes: str(), releaseDate: date() },
  logs: { query: str(), service: str(), host: str({ format: 'hostname' }) },
  status: { component: str(), status: { type: 'string', enum: ['operational', 'degraded', 'outage', 'maintenance'] } },
  calendar: { title: str(), start: dateTime(), end: dateTime(), attendees: list(email()) },
  document: { title: str(), content: str(), folder: str() },
  spreadsheet: { sheet: str(), values: list() },
  user: { email: email(), name: str(), role: str() },
  api: { name: str(), scopes: list(), expiresAt: date() },
  webhook: { url: str({ format: 'uri' }), events: list() },
};

/** The filter a qualifier in the description stands for. */
const QUALIFIER_PARAMS: Record<string, Record<string, Prop>> = {
  'for a date range': { from: date(), to: date() },
  'by owner': { owner: email() },
  'with filters': { filter: { type: 'object' } },
  'in bulk': { ids: list() },
  'for one project': { project: str() },
  'by tag': { tag: str() },
  'by region': { region: str() },
  'for the team': { team: str() },
};

/** A generated tool's input schema: what its verb on its object in its system would take. */
function generatedSchema(verb: string, object: string, system: string, qualifier: string): Record<string, unknown> {
  const key = object.split(' ')[0]!;
  const id = `${key}Id`;
  const fields = FIELDS[key] ?? {};
  const fieldNames = Object.keys(fields);
  const properties: Record<string, Prop> = {};
  let required: string[] = [];
  const idProp = str({ description: `the ${object} id in ${system}` });
  switch (verb) {
    case 'get':
    case 'delete':
    case 'archive':
    case 'approve':
      properties[id] = idProp;
      required = [id];
      break;
    case 'cancel':
      Object.assign(properties, { [id]: idProp, reason: str() });
      required = [id];
      break;
    case 'update':
      Object.assign(properties, { [id]: idProp }, fields);
      required = [id];
      break;
    case 'create':
    case 'validate':
      Object.assign(properties, fields);
      required = fieldNames.slice(0, 2);
      break;
    case 'notify':
      Object.assign(properties, { [id]: idProp, recipient: email(), message: str() });
      required = [id, 'recipient'];
      break;
    case 'sync':
      properties.since = dateTime();
      break;
    case 'import':
      properties.sourceUrl = str({ format: 'uri' });
      required = ['sourceUrl'];
      break;
    default: // list, search, count, export, summarize: filters
      if (verb === 'search') {
        properties.query = str();
        required = ['query'];
      }
      Object.assign(properties, QUALIFIER_PARAMS[qualifier] ?? {});
      if (qualifier === 'for a date range') required.push('from', 'to');
  }
  properties.workspace = str({ description: `${system} workspace` });
  return { type: 'object', properties, required, additionalProperties: false };
}

/** `count` distinct tools, the same for every seed run: the catalog grows by appending. */
function generateTools(count: number): GenTool[] {
  const rand = seededRandom(14);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const out: GenTool[] = [];
  const seen = new Set(evalSet.tools.map((t) => t.name));
  while (out.length < count) {
    const [verb, phrase, sideEffect] = pick(VERBS);
    const object = pick(OBJECTS);
    const system = pick(SYSTEMS);
    const qualifier = pick(QUALIFIERS);
    const base = `${system}_${object}_${verb}`.toLowerCase().replace(/[^a-z0-9]+/g, '_');
    let name = base;
    for (let i = 2; seen.has(name); i++) name = `${base}_${i}`;
    seen.add(name);
    const invocations = Math.floor(rand() * 40);
    out.push({
      name,
      description: `${phrase} ${object}${verb === 'list' || verb === 'count' ? 's' : ''} in ${system} ${qualifier}.`,
      sideEffect,
      destructive: verb === 'delete',
      inputSchema: generatedSchema(verb, object, system, qualifier),
      invocations,
      successes: Math.max(0, invocations - Math.floor(rand() * 3)),
    });
  }
  return out;
}

/** Rows straight into the index (the store's columns), with usage: registering 10,000 folders through the store would take the bench's whole budget. */
async function insertTools(sql: Sql, tools: GenTool[]): Promise<void> {
  for (let i = 0; i < tools.length; i += 500) {
    const batch = tools.slice(i, i + 500);
    await sql.begin(async (tx) => {
      await tx`insert into tools (name, current_version, description, side_effect, destructive, search_params, value_kinds)
               select n, 1, d, s, x = 'true', p, k::text[]
               from unnest(${batch.map((t) => t.name)}::text[], ${batch.map((t) => t.description)}::text[], ${batch.map((t) => t.sideEffect)}::text[],
                           ${batch.map((t) => String(t.destructive))}::text[], ${batch.map((t) => paramsSearchText(t.inputSchema))}::text[],
                           ${batch.map((t) => `{${valueKindsOf(t.inputSchema).join(',')}}`)}::text[]) as u(n, d, s, x, p, k)`;
      const manifests = batch.map((t) => JSON.stringify({ name: t.name, version: 1, ...evalToolVersion(t).manifest }));
      await tx`insert into tool_versions (name, version, manifest, source, tests, source_sha256, files_sha256, dir, status, created_by, idempotency_key)
               select n, 1, m::jsonb, 'export async function run() { return {}; }', '', repeat('a', 64), repeat('b', 64), '/dev/null', 'verified', 'forge', 'bench:' || n
               from unnest(${batch.map((t) => t.name)}::text[], ${manifests}::text[]) as u(n, m)`;
      await tx`insert into invocations (idempotency_key, tool, version, input_hash, latency_ms, success)
               select 'bench:' || u.n || ':' || g, u.n, 1, repeat('c', 64), 100, g <= u.s
               from unnest(${batch.map((t) => t.name)}::text[], ${batch.map((t) => t.invocations)}::int[], ${batch.map((t) => t.successes)}::int[]) as u(n, c, s)
               cross join lateral generate_series(1, u.c) g`;
    });
  }
}

/** The generated tools' vectors, as the store writes a registered tool's (unless FORGE_EMBEDDINGS_URL=off). */
async function insertEmbeddings(sql: Sql, embedder: Embedder, tools: GenTool[]): Promise<void> {
  for (let i = 0; i < tools.length; i += 200) {
    const batch = tools.slice(i, i + 200);
    const vectors = await embedder.embed(batch.map((t) => embeddingText(t.name, t.description)));
    await sql`insert into tool_embeddings (name, version, model, embedding)
              select n, 1, ${embedder.model}, e::float8[]
              from unnest(${batch.map((t) => t.name)}::text[], ${vectors.map((v) => `{${v.join(',')}}`)}::text[]) as u(n, e)`;
  }
}

async function insertEvalCatalog(registry: Registry, sql: Sql): Promise<void> {
  for (const t of evalSet.tools) {
    await registry.registerVersion(evalToolVersion(t));
    await sql`insert into invocations (idempotency_key, tool, version, input_hash, latency_ms, success)
              select 'eval:' || ${t.name} || ':' || g, ${t.name}, 1, repeat('c', 64), 100, g <= ${t.usage.successes}
              from generate_series(1, ${t.usage.invocations}::int) g`;
  }
}

// --- measuring ---------------------------------------------------------------------------------

interface Relevance {
  precisionAt1: number;
  decisionsRight: number;
  offered: string[];
  decisions: string[];
  /** per request, the candidates considered (name similarity score), for --changed */
  considered: string[];
}

async function relevance(registry: Registry): Promise<Relevance> {
  const calls = createToolCalls({ registry });
  const offered: string[] = [];
  const decisions: string[] = [];
  const considered: string[] = [];
  let top1 = 0;
  let withTool = 0;
  let right = 0;
  for (const r of evalSet.requests) {
    const offer = await calls.offerTools({ query: r.text });
    const { decision } = await calls.discoverTool({ query: r.text, args: r.args });
    const first = offer.tools[0]?.name ?? '-';
    offered.push(first);
    considered.push(offer.considered.map((c) => `${c.name} ${round(c.similarity, 3)}/${round(c.score, 3)}`).join(', '));
    const d = decision.action === 'forge' ? 'forge' : `${decision.action} ${decision.tool}`;
    decisions.push(d);
    if (r.expected !== 'none') {
      withTool++;
      if (first === r.expected) top1++;
    }
    if (r.expected === 'none' ? decision.action === 'forge' : decision.action !== 'forge' && decision.tool === r.expected) right++;
  }
  return { precisionAt1: round(top1 / withTool, 3), decisionsRight: right, offered, decisions, considered };
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

function scans(node: PlanNode, out: { indexes: Set<string>; seq: Set<string> }) {
  if (node['Index Name']) out.indexes.add(node['Index Name']);
  if (node['Node Type'] === 'Seq Scan' && node['Relation Name']) out.seq.add(node['Relation Name']);
  for (const p of node.Plans ?? []) scans(p, out);
}

interface Captured {
  query: string;
  params: unknown[];
}

/**
 * The statements one search sends, each EXPLAINed (ANALYZE) with its own parameters, in one
 * transaction as the search sends them (a `set_config` it makes is made again, not explained).
 */
async function plans(sql: Sql, captured: Captured[]) {
  const out: { statement: string; ms: number; indexes: string[]; seqScans: string[] }[] = [];
  await sql.begin(async (tx) => {
    for (const c of captured) {
      const text = c.query.replace(/\s+/g, ' ').trim();
      if (/^(begin|commit|rollback)\b/i.test(text)) continue;
      if (/^select set_config\(/i.test(text)) {
        await tx.unsafe(c.query, c.params as never[]);
        continue;
      }
      const [row] = (await tx.unsafe(`explain (analyze, format json) ${c.query}`, c.params as never[])) as unknown as {
        'QUERY PLAN': [{ Plan: PlanNode; 'Execution Time': number }];
      }[];
      if (argv.includes('--explain-text'))
        for (const line of (await tx.unsafe(`explain (analyze) ${c.query}`, c.params as never[])) as unknown as { 'QUERY PLAN': string }[])
          process.stderr.write(`${line['QUERY PLAN']}\n`);
      const plan = row!['QUERY PLAN'][0];
      const found = { indexes: new Set<string>(), seq: new Set<string>() };
      scans(plan.Plan, found);
      out.push({
        statement: text.slice(0, 70),
        ms: round(plan['Execution Time'], 2),
        indexes: [...found.indexes],
        seqScans: [...found.seq],
      });
    }
  });
  return out;
}

/** The search's tables whose statistics the server's planner reads. */
const searchTables = ['tools', 'tool_versions', 'tool_usage', 'tool_lexemes', 'tool_words', 'lexeme_postings', 'word_postings'];

/**
 * How current the planner's statistics are when a size's measuring starts: how many of the search
 * tables' rows changed since autovacuum (or anyone) last analyzed them, and which tables never
 * were. The catalog was just loaded in bulk, so this depends on when autovacuum's last pass fell;
 * a running Forge that grew one tool at a time has its tables analyzed every 10 % or so. PGlite
 * has no autovacuum and never has statistics.
 */
async function statisticsState(db: BenchDb): Promise<string> {
  if (db.kind === 'pglite') return 'none (no autovacuum)';
  const rows = await db.sql<{ relname: string; live: number; changed: number; analyzed: boolean }[]>`
    select relname, n_live_tup::int as live, n_mod_since_analyze::int as changed,
           (last_autoanalyze is not null or last_analyze is not null) as analyzed
    from pg_stat_user_tables where relname = any(${searchTables}::text[]) and schemaname = current_schema()`;
  const never = rows.filter((r) => !r.analyzed).map((r) => r.relname);
  const changed = rows.reduce((a, r) => a + r.changed, 0);
  const live = rows.reduce((a, r) => a + r.live, 0);
  const stale = `${changed} row changes since last analyzed (${live} rows)`;
  return never.length ? `${stale}; never analyzed: ${never.join(' ')}` : stale;
}

async function measureBackend(kind: 'pglite' | 'postgres', adminUrl: string | undefined) {
  const db: BenchDb = kind === 'pglite' ? await pgliteDb() : await postgresDb(adminUrl!, 'discovery');
  const captured: Captured[] = [];
  let capturing = false;
  // A client of its own that records what one search sends, for EXPLAIN.
  const traced = postgres(db.url, {
    max: kind === 'pglite' ? 1 : 4,
    onnotice: () => {},
    debug: (_conn, query, params) => {
      if (capturing) captured.push({ query, params: params as unknown[] });
    },
  });
  const dir = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'forge-bench-discovery-'));
  const registry = createRegistry({ sql: traced, root: path.join(dir, 'tools'), embedder: searchEmbedder });
  const rows: { size: number; latency: ReturnType<typeof summary>; plans: Awaited<ReturnType<typeof plans>>; statistics: string }[] = [];
  let baseline: Relevance | undefined;
  let largest: Relevance | undefined;
  try {
    await insertEvalCatalog(registry, db.sql);
    if (withRelevance) baseline = await relevance(registry);
    const gridRegistries = denseGrid.map((densePolicy) =>
      createRegistry({ sql: traced, root: path.join(dir, 'tools'), embedder: searchEmbedder, densePolicy }),
    );
    const gridBaselines = [];
    for (const r of gridRegistries) gridBaselines.push((await relevance(r)).precisionAt1);
    const generated = generateTools(Math.max(...sizes) - evalSet.tools.length);
    let have = 0;
    for (const size of sizes) {
      const want = size - evalSet.tools.length;
      await insertTools(db.sql, generated.slice(have, want));
      if (embedder) await insertEmbeddings(db.sql, embedder, generated.slice(have, want));
      have = want;
      const statistics = await statisticsState(db);
      const all = evalSet.requests.map((r) => r.text);
      const texts = requestCount > 0 ? all.filter((_, i) => i % Math.ceil(all.length / requestCount) === 0) : all;
      // warm-up: connections, caches of the search (vocabulary), the server's buffers
      for (const t of texts.slice(0, 10)) await registry.search(t, { limit: harness.policy.retrieval.candidates });
      embedding = embedderFor(config());
      const ms: number[] = [];
      for (const t of texts) {
        const started = performance.now();
        await registry.search(t, { limit: harness.policy.retrieval.candidates });
        ms.push(performance.now() - started);
      }
      const slowest = Number(opt('--slowest', '0'));
      if (slowest)
        for (const i of ms
          .map((_, i) => i)
          .sort((a, b) => ms[b]! - ms[a]!)
          .slice(0, slowest))
          process.stderr.write(`[bench:discovery] ${kind} ${size}: ${round(ms[i]!)} ms "${texts[i]}"\n`);
      captured.length = 0;
      capturing = true;
      const probeStarted = performance.now();
      await registry.search(opt('--probe', 'when does the TLS certificate of example.com expire?'), {
        limit: harness.policy.retrieval.candidates,
      });
      if (argv.includes('--explain-text')) process.stderr.write(`probe search: ${round(performance.now() - probeStarted)} ms\n`);
      capturing = false;
      rows.push({ size, latency: summary(ms), plans: await plans(db.sql, captured), statistics });
      process.stderr.write(`[bench:discovery] ${kind} ${size} tools: p50 ${rows.at(-1)!.latency.p50} ms; statistics: ${statistics}\n`);
    }
    if (withRelevance) largest = await relevance(registry);
    for (const [i, r] of gridRegistries.entries()) {
      const p = denseGrid[i]!;
      process.stderr.write(
        `[bench:discovery] ${kind} dense ${p.weight}:${p.center}:${p.nearest} precision@1 ${gridBaselines[i]} (${evalSet.tools.length}) → ${(await relevance(r)).precisionAt1} (${Math.max(...sizes)})\n`,
      );
    }
    // --changed: the candidates of every request whose offer or decision the larger catalog changed
    if (baseline && largest && argv.includes('--changed'))
      for (const [i, r] of evalSet.requests.entries()) {
        if (baseline.offered[i] === largest.offered[i] && baseline.decisions[i] === largest.decisions[i]) continue;
        process.stderr.write(
          `[bench:discovery] ${kind} changed: "${r.text}" expected ${r.expected}\n` +
            `  before: ${baseline.decisions[i]} | ${baseline.considered[i]}\n  after:  ${largest.decisions[i]} | ${largest.considered[i]}\n`,
        );
      }
  } finally {
    await traced.end({ timeout: 2 });
    if (argv.includes('--keep')) {
      process.stderr.write(`[bench:discovery] kept ${db.url}\n`);
      await db.sql.end({ timeout: 2 }); // the database stays; the connections must not keep the process alive
    } else await db.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
  return { kind, rows, baseline, largest };
}

const adminUrl = backends.includes('postgres') ? ensureLocalPostgres() : undefined;
const results: Awaited<ReturnType<typeof measureBackend>>[] = [];
for (const kind of backends) results.push(await measureBackend(kind, adminUrl));

const first = (r: (typeof results)[number]) => r.rows[0]!.latency.p50;
report(
  'discovery',
  'latency',
  `discovery: one search (${requestCount || evalSet.requests.length} evaluation requests) as the catalog grows`,
  ['backend', 'tools', 'p50 ms', 'p95 ms', 'growth p50', 'indexes used', 'read whole'],
  results.flatMap((r) =>
    r.rows.map((row) => [
      r.kind,
      row.size,
      row.latency.p50,
      row.latency.p95,
      `${round(row.latency.p50 / first(r), 1)}x`,
      [...new Set(row.plans.flatMap((p) => p.indexes))].join(' ') || '-',
      [...new Set(row.plans.flatMap((p) => p.seqScans))].join(' ') || '-',
    ]),
  ),
  {
    machine: machine(),
    backends: results.map((r) => ({
      backend: r.kind,
      sizes: r.rows.map((row) => ({
        tools: row.size,
        ms: row.latency,
        growthP50: round(row.latency.p50 / first(r), 2),
        statistics: row.statistics,
        plans: row.plans,
      })),
    })),
  },
);

report(
  'discovery',
  'plans',
  `discovery: the statements of one search at ${Math.max(...sizes)} tools (EXPLAIN ANALYZE)`,
  ['backend', 'statement', 'ms', 'indexes', 'read whole'],
  results.flatMap((r) =>
    r.rows.at(-1)!.plans.map((p) => [r.kind, p.statement, p.ms, p.indexes.join(' ') || '-', p.seqScans.join(' ') || '-']),
  ),
  { tools: Math.max(...sizes), backends: results.map((r) => ({ backend: r.kind, plans: r.rows.at(-1)!.plans })) },
);

const relevant = results.filter((r) => r.baseline && r.largest) as ((typeof results)[number] & {
  baseline: Relevance;
  largest: Relevance;
})[];
if (relevant.length)
  report(
    'discovery',
    'relevance',
    `discovery: relevance at ${Math.max(...sizes)} tools vs the evaluation catalog alone (${evalSet.tools.length} tools), same run; ${embedder ? `meaning: ${embedder.model}` : 'words only'}`,
    ['backend', 'catalog', 'precision@1', 'decisions right', 'offers changed', 'decisions changed'],
    relevant.flatMap((r) => {
      const changedOffers = r.largest.offered.filter((o, i) => o !== r.baseline.offered[i]).length;
      const changedDecisions = r.largest.decisions.filter((d, i) => d !== r.baseline.decisions[i]).length;
      return [
        [
          r.kind,
          `${evalSet.tools.length} (baseline)`,
          r.baseline.precisionAt1,
          `${r.baseline.decisionsRight}/${evalSet.requests.length}`,
          '-',
          '-',
        ],
        [
          r.kind,
          String(Math.max(...sizes)),
          r.largest.precisionAt1,
          `${r.largest.decisionsRight}/${evalSet.requests.length}`,
          changedOffers,
          changedDecisions,
        ],
      ];
    }),
    {
      requests: evalSet.requests.length,
      embeddings: embedder?.model ?? null,
      backends: relevant.map((r) => ({
        backend: r.kind,
        baseline: { tools: evalSet.tools.length, precisionAt1: r.baseline.precisionAt1, decisionsRight: r.baseline.decisionsRight },
        largest: { tools: Math.max(...sizes), precisionAt1: r.largest.precisionAt1, decisionsRight: r.largest.decisionsRight },
        changed: evalSet.requests
          .map((q, i) => ({ text: q.text, expected: q.expected, before: r.baseline.decisions[i], after: r.largest.decisions[i] }))
          .filter((c) => c.before !== c.after),
        noWorse: r.largest.precisionAt1 >= r.baseline.precisionAt1,
      })),
    },
  );

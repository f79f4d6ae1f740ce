/**
 * The scripted model: an HTTP server that speaks the Anthropic Messages API and answers
 * from scenario files (domain/scenario.ts, docs/scenarios.md). Tests and the offline demo
 * point ANTHROPIC_BASE_URL at it, so the real @anthropic-ai/sdk code path always runs.
 *
 *   node --import tsx scripted-model/server.ts --port 4399 scenarios/demo.json [more.json ...]
 *
 * It also simulates prompt caching (a prefix marked with cache_control is "written" the
 * first time it is seen and "read" after that) and estimates token counts at ~4 characters
 * per token, unless a response gives its own usage.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { hashedEmbedding } from '../domain/embedding.ts';
import { InvalidInputError } from '../domain/errors.ts';
import { SCRIPTED_NO_RULE_HEADER } from '../domain/llm-retry.ts';
import { log as rootLog } from '../services/log.ts';
import {
  errorTypeFor,
  interpolate,
  type RequestFacts,
  type Scenario,
  type ScenarioInput,
  type ScenarioResponse,
  type ScenarioRule,
  scenarioSchema,
  selectResponse,
} from './scenario.ts';

const log = rootLog.child({ component: 'scripted-model' });

export interface RecordedRequest {
  at: string;
  method: string;
  path: string;
  /** Lower-case names; credentials are redacted. */
  headers: Record<string, string>;
  /** The parsed JSON body (undefined when it was not JSON). */
  body: unknown;
  /** "<scenario>#<rule name or index>" of the rule that answered, if any. */
  rule?: string;
  status: number;
}

export interface ScriptedModel {
  url: string;
  close(): Promise<void>;
  /** Every request received, oldest first (the newest 1000 are kept). */
  readonly requests: RecordedRequest[];
  /** How many /v1/messages requests no rule answered. */
  readonly unmatched: number;
}

export interface ScriptedModelOptions {
  scenarios?: ScenarioInput[];
  scenarioFiles?: string[];
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
}

const keepRequests = 1000;

// ---- loading scenarios ----

export async function loadScenarioFile(file: string): Promise<Scenario> {
  let json: unknown;
  try {
    json = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw new InvalidInputError(`scenario file ${file}`, (err as Error).message);
  }
  return parseScenario(json, `scenario file ${file}`);
}

export function parseScenario(value: unknown, what = 'scenario'): Scenario {
  const parsed = scenarioSchema.safeParse(value);
  if (!parsed.success) throw new InvalidInputError(what, z.prettifyError(parsed.error));
  return parsed.data;
}

interface LoadedRule {
  rule: ScenarioRule;
  label: string;
}

// ---- the request, as far as the scripted model needs it ----

const blockSchema = z.looseObject({ type: z.string() });
const messagesRequestSchema = z.looseObject({
  model: z.string().min(1),
  max_tokens: z.number().int().min(1),
  messages: z.array(z.looseObject({ role: z.enum(['user', 'assistant']), content: z.union([z.string(), z.array(blockSchema)]) })).min(1),
  system: z.union([z.string(), z.array(blockSchema)]).optional(),
  tools: z.array(z.looseObject({ name: z.string() })).optional(),
  tool_choice: z.looseObject({ type: z.string(), name: z.string().optional() }).optional(),
  stream: z.boolean().optional(),
});
type MessagesRequest = z.infer<typeof messagesRequestSchema>;
type Block = z.infer<typeof blockSchema>;

/** Text of a block as a rule sees it: text blocks, and the text inside tool_result blocks. */
function blockText(b: Block): string {
  if (b.type === 'text' && typeof b.text === 'string') return b.text;
  if (b.type === 'tool_result') {
    if (typeof b.content === 'string') return b.content;
    if (Array.isArray(b.content)) return b.content.map((c) => (c && typeof c === 'object' && 'text' in c ? String(c.text) : '')).join('\n');
  }
  return '';
}

const contentText = (c: string | Block[]): string => (typeof c === 'string' ? c : c.map(blockText).filter(Boolean).join('\n'));

/** Document blocks (plain-text source) as a rule sees them: the title, then the text. */
function documentText(c: string | Block[]): string {
  if (typeof c === 'string') return '';
  return c
    .filter((b) => b.type === 'document')
    .map((b) => {
      const source = b.source as { type?: string; data?: unknown } | undefined;
      const data = source?.type === 'text' && typeof source.data === 'string' ? source.data : '';
      return [typeof b.title === 'string' ? b.title : '', data].filter(Boolean).join('\n');
    })
    .join('\n\n');
}

function factsOf(req: MessagesRequest, purpose: string | undefined): RequestFacts {
  const lastUser = [...req.messages].reverse().find((m) => m.role === 'user');
  const firstUser = req.messages.find((m) => m.role === 'user');
  const forced = req.tool_choice?.type === 'tool' && req.tool_choice.name ? [req.tool_choice.name] : undefined;
  return {
    system: req.system === undefined ? '' : contentText(req.system),
    user: lastUser ? contentText(lastUser.content) : '',
    first: firstUser ? contentText(firstUser.content) : '',
    document: firstUser ? documentText(firstUser.content) : '',
    tools: forced ?? (req.tools ?? []).map((t) => t.name),
    model: req.model,
    purpose,
  };
}

// ---- building replies ----

const estimateTokens = (value: unknown): number => Math.max(1, Math.ceil(JSON.stringify(value ?? '').length / 4));
const randomId = (prefix: string) => `${prefix}${randomBytes(12).toString('hex')}`;

/**
 * Prompt-caching simulation: everything up to the last block carrying cache_control
 * (in the API's order: tools, system, messages) is the cached prefix. Unlike the real API
 * there is no minimum length, so short test prompts show caching too.
 */
function cacheUsage(req: MessagesRequest, seen: Set<string>): { prefixTokens: number; hit: boolean } {
  const items: unknown[] = [
    ...(req.tools ?? []),
    ...(typeof req.system === 'string' ? [] : (req.system ?? [])),
    ...req.messages.flatMap((m) => (typeof m.content === 'string' ? [] : m.content)),
  ];
  let last = -1;
  items.forEach((i, n) => {
    if (i !== null && typeof i === 'object' && 'cache_control' in i && i.cache_control) last = n;
  });
  if (last < 0) return { prefixTokens: 0, hit: false };
  const key = JSON.stringify([req.model, items.slice(0, last + 1)]);
  const hit = seen.has(key);
  seen.add(key);
  return { prefixTokens: estimateTokens(items.slice(0, last + 1)), hit };
}

function contentOf(response: ScenarioResponse): Block[] {
  if (response.text !== undefined) return [{ type: 'text', text: response.text }];
  if (response.tool_use) {
    const { name, input, id } = response.tool_use;
    return [{ type: 'tool_use', id: id ?? randomId('toolu_scripted_'), name, input }];
  }
  return (response.content ?? []).map((b) => (b.type === 'tool_use' && !b.id ? { ...b, id: randomId('toolu_scripted_') } : b));
}

function buildMessage(req: MessagesRequest, response: ScenarioResponse, cacheSeen: Set<string>) {
  const content = contentOf(response);
  const cache = cacheUsage(req, cacheSeen);
  const total = estimateTokens({ system: req.system, messages: req.messages, tools: req.tools });
  const usage = {
    input_tokens: Math.max(1, total - cache.prefixTokens),
    output_tokens: estimateTokens(content),
    cache_creation_input_tokens: cache.hit ? 0 : cache.prefixTokens,
    cache_read_input_tokens: cache.hit ? cache.prefixTokens : 0,
    ...response.usage,
  };
  return {
    id: randomId('msg_scripted_'),
    type: 'message' as const,
    role: 'assistant' as const,
    model: req.model,
    content,
    stop_reason: response.stop_reason ?? (content.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn'),
    stop_sequence: null,
    usage,
  };
}

type Message = ReturnType<typeof buildMessage>;

// ---- HTTP ----

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': randomId('req_scripted_'), ...headers });
  res.end(JSON.stringify(body));
}

function sendError(res: http.ServerResponse, status: number, type: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { type: 'error', error: { type, message } }, headers);
}

/** Server-sent events in the order the API sends them, so the SDK's stream helpers work. */
function sendStream(res: http.ServerResponse, msg: Message): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'request-id': randomId('req_scripted_') });
  const event = (type: string, data: object) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  event('message_start', { message: { ...msg, content: [], stop_reason: null, usage: { ...msg.usage, output_tokens: 1 } } });
  event('ping', {});
  msg.content.forEach((block, index) => {
    if (block.type === 'text') {
      event('content_block_start', { index, content_block: { type: 'text', text: '' } });
      event('content_block_delta', { index, delta: { type: 'text_delta', text: block.text } });
    } else if (block.type === 'tool_use') {
      event('content_block_start', { index, content_block: { ...block, input: {} } });
      event('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: JSON.stringify(block.input) } });
    } else {
      // Other block kinds arrive whole in their start event.
      event('content_block_start', { index, content_block: block });
    }
    event('content_block_stop', { index });
  });
  event('message_delta', {
    delta: { stop_reason: msg.stop_reason, stop_sequence: null },
    usage: { output_tokens: msg.usage.output_tokens },
  });
  event('message_stop', {});
  res.end();
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function headerRecord(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    out[k] = k === 'authorization' || k === 'x-api-key' ? '***' : Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quote = (s: string, n = 160) => JSON.stringify(s.length > n ? `${s.slice(0, n)}…` : s);

export async function startScriptedModel(opts: ScriptedModelOptions): Promise<ScriptedModel> {
  const sources: { label: string; scenario: Scenario }[] = [];
  for (const file of opts.scenarioFiles ?? []) sources.push({ label: file, scenario: await loadScenarioFile(file) });
  for (const s of opts.scenarios ?? []) sources.push({ label: `scenario "${s.name}"`, scenario: parseScenario(s, `scenario "${s.name}"`) });
  if (sources.length === 0) throw new InvalidInputError('scripted model options', 'give at least one scenario or scenario file');

  const rules: LoadedRule[] = sources.flatMap(({ scenario }) =>
    scenario.rules.map((rule, i) => ({ rule, label: `${scenario.name}#${rule.name ?? i + 1}` })),
  );
  const used: number[] = [];
  const cacheSeen = new Set<string>();
  const requests: RecordedRequest[] = [];
  let unmatched = 0;
  const loaded = sources.map((s) => s.label).join(', ');

  async function handleMessages(body: unknown, purpose: string | undefined, res: http.ServerResponse, rec: RecordedRequest) {
    const parsed = messagesRequestSchema.safeParse(body);
    if (!parsed.success) {
      rec.status = 400;
      return sendError(res, 400, 'invalid_request_error', `scripted model: malformed Messages request: ${z.prettifyError(parsed.error)}`);
    }
    const facts = factsOf(parsed.data, purpose);
    const picked = selectResponse(
      rules.map((r) => r.rule),
      used,
      facts,
    );
    if (!picked) {
      unmatched++;
      rec.status = 400;
      const message =
        `scripted model: no rule matched this request (scenarios loaded: ${loaded}). ` +
        `Last user message starts ${quote(facts.user)}; tools: [${facts.tools.join(', ')}]; model: ${facts.model}; ` +
        `purpose: ${facts.purpose ?? '(none)'}. Add a rule whose "match" fits (docs/scenarios.md).`;
      log.warn('no rule matched', { loaded, user: facts.user.slice(0, 160), tools: facts.tools, purpose });
      // The header lets Forge's client tell "no rule" from any other 400 and say what to do in a line.
      return sendError(res, 400, 'invalid_request_error', message, { [SCRIPTED_NO_RULE_HEADER]: '1' });
    }
    const response = interpolate(picked.response, picked.captures);
    rec.rule = rules[picked.ruleIndex]!.label;
    if (response.delay_ms) await sleep(response.delay_ms);
    if (response.error) {
      const e = response.error;
      rec.status = e.status;
      return sendError(res, e.status, e.type ?? errorTypeFor(e.status), e.message, e.headers);
    }
    const msg = buildMessage(parsed.data, response, cacheSeen);
    rec.status = 200;
    log.debug('answered', { rule: rec.rule, stop_reason: msg.stop_reason });
    return parsed.data.stream ? sendStream(res, msg) : sendJson(res, 200, msg);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://scripted');
    const raw = await readBody(req);
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = undefined;
    }
    const rec: RecordedRequest = {
      at: new Date().toISOString(),
      method: req.method ?? '',
      path: url.pathname,
      headers: headerRecord(req),
      body,
      status: 0,
    };
    requests.push(rec);
    if (requests.length > keepRequests) requests.shift();

    if (req.method === 'GET' && url.pathname === '/health') {
      rec.status = 200;
      return sendJson(res, 200, { ok: true, scenarios: sources.map((s) => s.label), requests: requests.length, unmatched });
    }
    if (req.method === 'POST' && url.pathname === '/v1/messages') {
      if (body === undefined) {
        rec.status = 400;
        return sendError(res, 400, 'invalid_request_error', 'scripted model: the request body is not JSON');
      }
      const purpose = req.headers['x-forge-purpose'];
      return handleMessages(body, Array.isArray(purpose) ? purpose[0] : purpose, res, rec);
    }
    if (req.method === 'POST' && url.pathname === '/v1/embeddings') {
      // The stand-in for an embedding provider: deterministic hashed bags of words.
      const input = (body as { input?: unknown } | undefined)?.input;
      const texts = typeof input === 'string' ? [input] : Array.isArray(input) ? input.map(String) : [];
      rec.status = texts.length ? 200 : 400;
      if (!texts.length)
        return sendError(res, 400, 'invalid_request_error', 'scripted model: /v1/embeddings needs { input: string | string[] }');
      return sendJson(res, 200, { model: 'scripted-hash', data: texts.map((t, index) => ({ embedding: hashedEmbedding(t), index })) });
    }
    if (req.method === 'POST' && url.pathname === '/v1/messages/count_tokens') {
      rec.status = 200;
      return sendJson(res, 200, { input_tokens: estimateTokens(body) });
    }
    rec.status = 404;
    return sendError(
      res,
      404,
      'not_found_error',
      `scripted model: no endpoint ${req.method} ${url.pathname} (it serves POST /v1/messages)`,
    );
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error('request failed', { err: String(err) });
      if (!res.headersSent) sendError(res, 500, 'api_error', `scripted model failed: ${String(err)}`);
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('scripted model: server has no TCP address');
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;
  log.debug('scripted model listening', { url, scenarios: sources.map((s) => s.label), rules: rules.length });

  return {
    url,
    requests,
    get unmatched() {
      return unmatched;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // The SDK keeps connections alive; without this close() waits for them to time out.
        server.closeAllConnections();
      }),
  };
}

// ---- CLI ----

const defaultScenario = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'scenarios', 'demo.json');

function parseArgs(argv: string[]): { port: number; host: string; files: string[] } {
  const args = z
    .object({ port: z.coerce.number().int().min(0).max(65535), host: z.string().min(1) })
    .safeParse({ port: flag(argv, '--port') ?? process.env.FORGE_SCRIPTED_MODEL_PORT ?? 4399, host: flag(argv, '--host') ?? '127.0.0.1' });
  if (!args.success) throw new InvalidInputError('scripted model arguments', z.prettifyError(args.error));
  const files = argv.filter((a, i) => !a.startsWith('--') && !['--port', '--host'].includes(argv[i - 1] ?? ''));
  return { ...args.data, files: files.length ? files : [process.env.FORGE_SCENARIO ?? defaultScenario] };
}

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const { port, host, files } = parseArgs(process.argv.slice(2));
  const model = await startScriptedModel({ scenarioFiles: files, port, host });
  // stdout carries only the URL, so scripts can capture it; logs go to stderr.
  process.stdout.write(`${model.url}\n`);
  const stop = () => void model.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    const e = err as Error & { fix?: string };
    log.error('scripted model could not start', { error: e.message, fix: e.fix });
    process.exit(1);
  });
}

import type { ApiEndpoint, ApiSpec, Permissions, SideEffect, ToolContext } from '../domain/tool.ts';
import { createToolContext, PermissionDeniedError } from './ctx.ts';
import type { LogEntry } from './protocol.ts';

/**
 * `@forge/testkit`: what a tool's tests import. Runs inside the sandbox (esbuild bundles
 * it into the test file). `testContext()` returns the same restricted ctx the tool gets in
 * production (runner/ctx.ts), but ctx.fetch is answered in-process by a mock of the API
 * described by the tool's api-spec.json, with faults a test can inject:
 *
 *   const ctx = testContext({ env: { API_KEY: 'k' }, faults: [{ kind: 'rate_limit', times: 1 }] });
 *   const out = await run({ ... }, ctx);
 *   assert.equal(ctx.calls.length, 2);
 *
 * The verification stage configures the kit (spec + the tool's permissions and side effect)
 * before the tests load, through `configureTestkit`. A `read` tool's ctx.fetch refuses any
 * method but GET, HEAD and OPTIONS, as in production, so a test exercising a lie fails.
 */

export type FaultKind = 'rate_limit' | 'server_error' | 'timeout' | 'malformed_json' | 'wrong_types';

export interface Fault {
  /** endpoint id from the spec, or 'METHOD /path' as written in the spec; all requests when absent */
  endpoint?: string;
  kind: FaultKind;
  /** how many matching requests get the fault; every one when absent */
  times?: number;
  /** server_error: the status (default 503) */
  status?: number;
  /** rate_limit: the Retry-After seconds (default 1) */
  retryAfter?: number;
  /** timeout: how long the request hangs before rejecting with a TimeoutError (default 1000 ms) */
  afterMs?: number;
}

export interface MockRequest {
  method: string;
  url: URL;
  headers: Headers;
  body?: string;
  /** path parameters from the spec's template, e.g. { zoneId: '42' } for /zones/{zoneId} */
  params: Record<string, string>;
}

export interface MockReply {
  status?: number;
  headers?: Record<string, string>;
  /** JSON-encoded unless it is a string */
  body?: unknown;
}

/** A fixed reply, or a function of the request. Keyed by endpoint id or 'METHOD /path'. */
export type Route = MockReply | ((req: MockRequest) => MockReply | Promise<MockReply>);

/** One request as the mock API saw it. */
export interface RecordedCall {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** the spec endpoint it matched */
  endpoint?: string;
  /** null when the request never got a response (timeout fault, aborted) */
  status: number | null;
  fault?: FaultKind;
}

export interface TestContextOptions {
  /** the variables the job would get; only the manifest's declared ones reach the tool */
  env?: Record<string, string>;
  faults?: Fault[];
  routes?: Record<string, Route>;
  /** override the spec the verification stage configured */
  apiSpec?: ApiSpec;
  /** override the tool's permissions (normally read from its manifest) */
  permissions?: Pick<Permissions, 'network' | 'env'>;
  /**
   * the side effect to hold the tool to when the kit was not configured (a unit test of the kit);
   * under verification the manifest's own wins: a test cannot loosen it
   */
  sideEffect?: SideEffect;
  /** abort ctx.signal after this long (default: never) */
  timeoutMs?: number;
}

export type TestContext = ToolContext & {
  /** requests that reached the mock API, in order */
  calls: RecordedCall[];
  /** ctx.fetch attempts refused by the permission check (they never reach the API) */
  denied: { url: string; error: string }[];
  /** what the tool logged through ctx.log */
  logs: LogEntry[];
  /** abort ctx.signal, as the runner does when the job's budget runs out */
  abort(reason?: unknown): void;
};

interface KitConfig {
  apiSpec?: ApiSpec;
  permissions?: Pick<Permissions, 'network' | 'env'>;
  sideEffect?: SideEffect;
}

// A global rather than a module variable: the runner and the test may end up with two copies of this module.
const CONFIG_KEY = Symbol.for('forge.testkit.config');
type ConfigHolder = { [CONFIG_KEY]?: KitConfig };

/** Called by the generated test entry before the tests load. */
export function configureTestkit(config: KitConfig): void {
  (globalThis as ConfigHolder)[CONFIG_KEY] = config;
}

function currentConfig(): KitConfig {
  return (globalThis as ConfigHolder)[CONFIG_KEY] ?? {};
}

// ---------------------------------------------------------------------------
// Routing

interface Match {
  endpoint: ApiEndpoint;
  params: Record<string, string>;
}

function templateToRegExp(template: string): { re: RegExp; names: string[] } {
  const names: string[] = [];
  const pattern = template
    .split('/')
    .map((seg) => {
      const m = /^\{(\w+)\}$/.exec(seg) ?? /^:(\w+)$/.exec(seg);
      if (m) {
        names.push(m[1]!);
        return '([^/]+)';
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return { re: new RegExp(`^${pattern}/?$`), names };
}

function matchTemplate(template: string, pathname: string): Record<string, string> | null {
  const { re, names } = templateToRegExp(template);
  const m = re.exec(pathname);
  if (!m) return null;
  return Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1] ?? '')]));
}

/** The request path relative to the spec's baseUrl, or null when it is another host. */
function relativePath(spec: ApiSpec, url: URL): string | null {
  const base = new URL(spec.baseUrl);
  if (base.host !== url.host) return null;
  const prefix = base.pathname.replace(/\/$/, '');
  if (prefix && !url.pathname.startsWith(prefix)) return null;
  return url.pathname.slice(prefix.length) || '/';
}

function findEndpoint(spec: ApiSpec, method: string, path: string): { match?: Match; pathMatched: boolean } {
  let pathMatched = false;
  for (const endpoint of spec.endpoints) {
    const params = matchTemplate(endpoint.path, path);
    if (!params) continue;
    pathMatched = true;
    if (endpoint.method === method) return { match: { endpoint, params }, pathMatched };
  }
  return { pathMatched };
}

function keyMatches(key: string, endpoint: ApiEndpoint | undefined, method: string, path: string): boolean {
  if (endpoint && (key === endpoint.id || key === `${endpoint.method} ${endpoint.path}`)) return true;
  const [m, template] = key.split(' ', 2);
  return m === method && template !== undefined && matchTemplate(template, path) !== null;
}

// ---------------------------------------------------------------------------
// Auth, as the spec declares it

function authProblem(spec: ApiSpec, req: MockRequest, env: Record<string, string>): string | null {
  const { kind, name, envVar } = spec.auth;
  if (kind === 'none') return null;
  const secret = envVar ? env[envVar] : undefined;
  if (envVar && !secret) return `this API needs ${envVar}, and the test gave none (testContext({ env: { ${envVar}: '...' } }))`;
  const ok = (value: string | null | undefined) => Boolean(value) && (secret === undefined || value === secret);
  switch (kind) {
    case 'bearer': {
      const m = /^Bearer\s+(.+)$/i.exec(req.headers.get('authorization') ?? '');
      return ok(m?.[1]) ? null : `expected "Authorization: Bearer <${envVar ?? 'token'}>"`;
    }
    case 'header': {
      const header = name ?? 'x-api-key';
      const value = req.headers.get(header) ?? '';
      // Some APIs want a scheme word before the key ("Token abc"): accept the key as the last word.
      return ok(value) || ok(value.split(/\s+/).pop()) ? null : `expected the ${header} header to carry ${envVar ?? 'the API key'}`;
    }
    case 'query': {
      const param = name ?? 'api_key';
      return ok(req.url.searchParams.get(param)) ? null : `expected the query parameter ${param}=<${envVar ?? 'key'}>`;
    }
    case 'basic': {
      const m = /^Basic\s+(.+)$/i.exec(req.headers.get('authorization') ?? '');
      const decoded = m?.[1] ? Buffer.from(m[1], 'base64').toString('utf8') : '';
      const parts = [decoded, ...decoded.split(':')];
      return parts.some((p) => ok(p)) ? null : `expected "Authorization: Basic ..." carrying ${envVar ?? 'the credentials'}`;
    }
  }
}

// ---------------------------------------------------------------------------
// Bodies

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = Record<string, unknown>;

/** A plausible value for a JSON Schema: enough for a tool to parse, deterministic for tests. */
export function synthesize(schema: unknown, root: unknown = schema, depth = 0): Json {
  if (!schema || typeof schema !== 'object' || depth > 8) return null;
  const s = schema as Schema;
  if (typeof s.$ref === 'string' && s.$ref.startsWith('#/')) {
    const target = s.$ref
      .slice(2)
      .split('/')
      .reduce<unknown>((o, k) => (o as Schema | undefined)?.[k], root);
    return synthesize(target, root, depth + 1);
  }
  if ('const' in s) return s.const as Json;
  if (Array.isArray(s.examples) && s.examples.length) return s.examples[0] as Json;
  if ('default' in s) return s.default as Json;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0] as Json;
  for (const key of ['oneOf', 'anyOf', 'allOf'] as const) {
    const options = s[key];
    if (Array.isArray(options) && options.length) return synthesize(options[0], root, depth + 1);
  }
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
  switch (type) {
    case 'object': {
      const props = (s.properties ?? {}) as Record<string, unknown>;
      const out: Record<string, Json> = {};
      for (const [k, v] of Object.entries(props)) out[k] = synthesize(v, root, depth + 1);
      return out;
    }
    case 'array':
      return [synthesize(s.items, root, depth + 1)];
    case 'integer':
      return typeof s.minimum === 'number' ? Math.ceil(s.minimum) : 1;
    case 'number':
      return typeof s.minimum === 'number' ? s.minimum : 1.5;
    case 'boolean':
      return true;
    case 'null':
      return null;
    case 'string':
      return sampleString(s);
    default:
      return s.properties ? synthesize({ ...s, type: 'object' }, root, depth + 1) : null;
  }
}

function sampleString(s: Schema): string {
  switch (s.format) {
    case 'date-time':
      return '2024-01-02T03:04:05Z';
    case 'date':
      return '2024-01-02';
    case 'email':
      return 'user@example.com';
    case 'uri':
    case 'url':
      return 'https://example.com/';
    case 'uuid':
      return '00000000-0000-4000-8000-000000000000';
  }
  const min = typeof s.minLength === 'number' ? s.minLength : 0;
  return 'sample'.padEnd(min, 'x');
}

/** Same shape, every leaf of the wrong type: what a changed or broken API returns. */
export function wrongTypes(value: unknown): Json {
  if (Array.isArray(value)) return value.map(wrongTypes);
  if (value === null) return 0;
  switch (typeof value) {
    case 'number':
      return String(value);
    case 'string':
      return 404;
    case 'boolean':
      return value ? 'yes' : 'no';
    case 'object':
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, wrongTypes(v)]));
    default:
      return null;
  }
}

function malformed(value: unknown): string {
  const json = JSON.stringify(value ?? {});
  const cut = json.slice(0, Math.max(1, Math.floor(json.length / 2)));
  try {
    JSON.parse(cut);
    return '{"truncated": ';
  } catch {
    return cut;
  }
}

function exampleBody(endpoint: ApiEndpoint): unknown {
  return endpoint.example !== undefined ? endpoint.example : synthesize(endpoint.response);
}

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  const text = typeof body === 'string' ? body : JSON.stringify(body ?? null);
  // 204/304 must not carry a body.
  const payload = status === 204 || status === 304 ? null : text;
  return new Response(payload, { status, headers: { 'content-type': 'application/json', ...headers } });
}

// ---------------------------------------------------------------------------
// The mock API as a fetch implementation

interface FaultState {
  fault: Fault;
  remaining: number;
}

function hang(afterMs: number, signal: AbortSignal | null | undefined): Promise<never> {
  return new Promise((_, reject) => {
    const abort = () => {
      clearTimeout(timer);
      reject(signal?.reason ?? new DOMException('This operation was aborted', 'AbortError'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      reject(new DOMException(`the request timed out after ${afterMs} ms (injected timeout fault)`, 'TimeoutError'));
    }, afterMs);
    if (signal?.aborted) return abort();
    signal?.addEventListener('abort', abort, { once: true });
  });
}

function bodyText(body: RequestInit['body']): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof URLSearchParams) return body.toString();
  return '[non-text body]';
}

export interface MockApi {
  fetch: typeof fetch;
  calls: RecordedCall[];
}

/** The mock API alone, as a fetch implementation (testContext wraps it in a ToolContext; Forge's own fault checks use it directly). */
export function createMockApi(spec: ApiSpec | undefined, opts: TestContextOptions): MockApi {
  const calls: RecordedCall[] = [];
  const env = opts.env ?? {};
  const faults: FaultState[] = (opts.faults ?? []).map((f) => ({ fault: f, remaining: f.times ?? Infinity }));
  const routes = Object.entries(opts.routes ?? {});

  const takeFault = (endpoint: ApiEndpoint | undefined, method: string, path: string): Fault | undefined => {
    const state = faults.find(
      (s) => s.remaining > 0 && (s.fault.endpoint === undefined || keyMatches(s.fault.endpoint, endpoint, method, path)),
    );
    if (!state) return undefined;
    state.remaining -= 1;
    return state.fault;
  };

  const answer = async (req: MockRequest, call: RecordedCall, signal: AbortSignal | null | undefined): Promise<Response> => {
    const path = spec ? relativePath(spec, req.url) : req.url.pathname;
    const route = routes.find(([key]) => path !== null && keyMatches(key, undefined, req.method, path));
    if (!spec || path === null) {
      if (route) return reply(route[1], req);
      return jsonResponse(404, {
        error: 'not_found',
        message: `${req.url.host} is not the API in api-spec.json (${spec?.baseUrl ?? 'no spec configured'})`,
      });
    }
    const { match, pathMatched } = findEndpoint(spec, req.method, path);
    if (match) {
      call.endpoint = match.endpoint.id;
      req.params = match.params;
    }
    const denied = authProblem(spec, req, env);
    if (denied) return jsonResponse(401, { error: 'unauthorized', message: denied });

    const fault = takeFault(match?.endpoint, req.method, path);
    if (fault) {
      call.fault = fault.kind;
      return injected(fault, match?.endpoint, signal);
    }
    const custom = routes.find(([key]) => keyMatches(key, match?.endpoint, req.method, path));
    if (custom) return reply(custom[1], req);
    if (match) return jsonResponse(200, exampleBody(match.endpoint));
    if (pathMatched)
      return jsonResponse(405, { error: 'method_not_allowed', message: `${req.method} is not defined for ${path} in api-spec.json` });
    return jsonResponse(404, { error: 'not_found', message: `no endpoint ${req.method} ${path} in api-spec.json` });
  };

  const fetchImpl = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    const body = bodyText(init?.body);
    const call: RecordedCall = {
      method,
      url: url.href,
      headers: Object.fromEntries(headers),
      ...(body !== undefined ? { body } : {}),
      status: null,
    };
    calls.push(call);
    const signal = init?.signal ?? null;
    if (signal?.aborted) throw signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
    const response = await answer({ method, url, headers, body, params: {} }, call, signal);
    call.status = response.status;
    return response;
  };
  return { fetch: fetchImpl as typeof fetch, calls };
}

async function reply(route: Route, req: MockRequest): Promise<Response> {
  const r = typeof route === 'function' ? await route(req) : route;
  return jsonResponse(r.status ?? 200, r.body ?? null, r.headers);
}

function injected(fault: Fault, endpoint: ApiEndpoint | undefined, signal: AbortSignal | null | undefined): Promise<Response> | Response {
  const sample = endpoint ? exampleBody(endpoint) : {};
  switch (fault.kind) {
    case 'rate_limit': {
      const seconds = fault.retryAfter ?? 1;
      return jsonResponse(
        429,
        { error: 'rate_limited', message: `too many requests: retry after ${seconds} s` },
        {
          'retry-after': String(seconds),
          'x-ratelimit-remaining': '0',
        },
      );
    }
    case 'server_error':
      return jsonResponse(fault.status ?? 503, { error: 'server_error', message: 'injected server error' });
    case 'timeout':
      return hang(fault.afterMs ?? 1000, signal);
    case 'malformed_json':
      return jsonResponse(200, malformed(sample));
    case 'wrong_types':
      return jsonResponse(200, wrongTypes(sample));
  }
}

// ---------------------------------------------------------------------------

/** Permissions when nothing configured the kit: the spec's own host and auth variable. */
function fallbackPermissions(spec: ApiSpec | undefined): Pick<Permissions, 'network' | 'env'> {
  if (!spec) return { network: [], env: [] };
  return { network: [new URL(spec.baseUrl).hostname], env: spec.auth.envVar ? [spec.auth.envVar] : [] };
}

/** A ToolContext for one test: production permission checks, mocked network, recorded calls. */
export function testContext(opts: TestContextOptions = {}): TestContext {
  const config = currentConfig();
  const spec = opts.apiSpec ?? config.apiSpec;
  const permissions = opts.permissions ?? config.permissions ?? fallbackPermissions(spec);
  const api = createMockApi(spec, opts);
  const controller = new AbortController();
  if (opts.timeoutMs !== undefined) {
    const timer = setTimeout(() => controller.abort(new DOMException('the job budget ran out', 'TimeoutError')), opts.timeoutMs);
    timer.unref?.();
  }
  const logs: LogEntry[] = [];
  const denied: TestContext['denied'] = [];
  const ctx = createToolContext({
    permissions,
    sideEffect: config.sideEffect ?? opts.sideEffect,
    env: opts.env ?? {},
    fetchImpl: api.fetch,
    signal: controller.signal,
    logSink: (e) => logs.push(e),
  });
  const recordedFetch = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    try {
      return await ctx.fetch(url, init);
    } catch (err) {
      if (err instanceof PermissionDeniedError) denied.push({ url: String(url), error: err.message });
      throw err;
    }
  };
  return {
    ...ctx,
    fetch: recordedFetch,
    calls: api.calls,
    denied,
    logs,
    abort: (reason?: unknown) => controller.abort(reason),
  };
}

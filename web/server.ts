import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DashboardBackend, dashboardLog, type Marks, type Section } from '../app/dashboard.ts';
import { ForgeError } from '../app/errors.ts';
import type { McpToken } from '../app/mcp-calls.ts';
import { CYCLE_KINDS, isCycleKind, MAX_CYCLES } from '../app/recent-cycles.ts';

/**
 * The dashboard's HTTP server (node:http): the page (web/public, plain HTML and one module script
 * on Preact + htm, served as files: no build step), its two libraries from node_modules, a JSON API
 * over the use-case layer and a server-sent event stream that says which section changed.
 *
 * The page can approve writes and freeze Forge, so:
 *  - every /api request needs the bearer token (Authorization header; the page keeps it from the
 *    address's #token=… fragment). A browser never attaches that header by itself, so another site
 *    cannot make a logged-in tab act (no cookie to ride on), and no CORS header is ever sent;
 *  - bound to loopback (the default), the Host header must name loopback (a rebound DNS name is refused);
 *  - a POST must carry JSON and, when the browser says where it comes from (Origin), come from this origin;
 *  - the page may not be framed (frame-ancestors 'none'), so a button cannot be clicked through another site.
 */

export interface DashboardServerOptions {
  host: string;
  port: number;
  token: McpToken;
  /** who decides from the page (FORGE_USER, else the OS user): the CLI's rule */
  user: string;
  /** how often the server looks for changes while a page listens */
  pollMs?: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const publicDir = path.join(here, 'public');

/** The page's libraries, ES modules as their packages ship them (an import map in index.html names them). */
const vendor: Record<string, string> = {
  '/vendor/preact.mjs': fileURLToPath(import.meta.resolve('preact')),
  '/vendor/preact-hooks.mjs': fileURLToPath(import.meta.resolve('preact/hooks')),
  '/vendor/htm.mjs': fileURLToPath(import.meta.resolve('htm')),
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const MAX_BODY = 64 * 1024;
const loopback = (host: string) => host === '127.0.0.1' || host === 'localhost' || host === '::1' || host.startsWith('127.');
const digest = (s: string) => createHash('sha256').update(s).digest();

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly fix?: string,
  ) {
    super(message);
  }
}

/** The inline import map is the page's one inline script: its hash goes into the CSP instead of 'unsafe-inline'. */
function contentSecurityPolicy(html: string): string {
  const scripts = [...html.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)].map(
    (m) => `'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`,
  );
  return [
    "default-src 'none'",
    `script-src 'self' ${scripts.join(' ')}`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new HttpError(415, 'send the body as application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `the body is not JSON: ${(err as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new HttpError(400, 'the body must be a JSON object');
  return parsed as Record<string, unknown>;
}

const optionalString = (body: Record<string, unknown>, key: string, max: number): string | undefined => {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new HttpError(400, `${key} must be a string`);
  if (v.length > max) throw new HttpError(400, `${key} is over ${max} characters`);
  return v;
};

export async function serveDashboard(backend: DashboardBackend, opts: DashboardServerOptions) {
  const indexHtml = fs.readFileSync(path.join(publicDir, 'index.html'), 'utf8');
  const csp = contentSecurityPolicy(indexHtml);
  const expected = digest(opts.token.token);
  const where =
    opts.token.from === 'FORGE_MCP_TOKEN' ? "FORGE_MCP_TOKEN in the dashboard's environment" : `the token in ${opts.token.from}`;
  const pollMs = opts.pollMs ?? 1000;

  // ------------------------------------------------------------------ change stream
  const listeners = new Set<http.ServerResponse>();
  let last: Marks | undefined;
  let timer: NodeJS.Timeout | undefined;
  let lastError: string | undefined;

  async function look(): Promise<void> {
    try {
      const marks = await backend.marks();
      const changed = last ? (Object.keys(marks) as Section[]).filter((k) => marks[k] !== last![k]) : [];
      last = marks;
      if (changed.length) broadcast('change', { sections: changed });
      lastError = undefined;
    } catch (err) {
      // Once per distinct failure, not once a second while Forge is down.
      const message = (err as Error).message;
      if (message !== lastError) dashboardLog.warn('dashboard could not read what changed', { error: message });
      lastError = message;
    } finally {
      if (listeners.size) timer = setTimeout(() => void look(), pollMs);
      else timer = undefined;
    }
  }

  function broadcast(event: string, data: unknown): void {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of listeners) res.write(frame);
  }

  function listen(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // A page that reconnects refetches everything: it may have missed changes meanwhile.
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ pollMs })}\n\n`);
    listeners.add(res);
    const beat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    req.on('close', () => {
      clearInterval(beat);
      listeners.delete(res);
    });
    if (!timer) {
      last = undefined;
      timer = setTimeout(() => void look(), 0);
    }
  }

  // ------------------------------------------------------------------ checks

  function hostRefusal(req: http.IncomingMessage): string | undefined {
    if (!loopback(opts.host)) return undefined;
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    return loopback(host) ? undefined : `Host ${req.headers.host} refused: the dashboard serves loopback only`;
  }

  function authorize(req: http.IncomingMessage): void {
    const auth = req.headers.authorization;
    if (!auth)
      throw new HttpError(
        401,
        'missing bearer token',
        `open the address forge up or forge dashboard printed (it ends in #token=…), or paste ${where}`,
      );
    const match = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (!match || !timingSafeEqual(digest(match[1]!.trim()), expected))
      throw new HttpError(401, 'wrong bearer token', `use ${where} (forge up prints the dashboard's address with it)`);
  }

  function sameOrigin(req: http.IncomingMessage): void {
    const origin = req.headers.origin;
    if (origin === undefined) return; // not a browser's cross-site request: browsers send Origin on every POST
    if (origin !== `http://${req.headers.host}`)
      throw new HttpError(403, `Origin ${origin} refused: only the dashboard's own page may act`);
    const site = req.headers['sec-fetch-site'];
    // Sec-Fetch-Site: cross-site, same-site, or none (typed into the address bar, a bookmark): said in words.
    const from = site === 'none' ? 'from no page' : `from a ${site === 'same-site' ? 'same-site' : 'cross-site'} page`;
    if (site && site !== 'same-origin') throw new HttpError(403, `a request ${from} refused: only the dashboard's own page may act`);
  }

  // ------------------------------------------------------------------ routes

  async function api(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    authorize(req);
    let parts: string[];
    try {
      parts = url.pathname.split('/').filter(Boolean).slice(1).map(decodeURIComponent); // after "api"
    } catch {
      throw new HttpError(400, `the path ${url.pathname} is not well-formed`);
    }
    if (req.method === 'GET') {
      if (parts[0] === 'events' && parts.length === 1) return listen(req, res);
      if (parts[0] === 'overview' && parts.length === 1) return send(res, 200, await backend.overview());
      if (parts[0] === 'tools' && parts.length === 2) return send(res, 200, await backend.tool(parts[1]!));
      if (parts[0] === 'audit' && parts.length === 1) {
        const q = url.searchParams;
        const limit = Number(q.get('limit') ?? 50);
        if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new HttpError(400, 'limit must be a whole number from 1 to 500');
        const entries = await backend.audit({
          limit,
          ...(q.get('tool') ? { tool: q.get('tool')! } : {}),
          ...(q.get('kind') ? { kind: q.get('kind')! } : {}),
          ...(q.get('workflow') ? { workflowId: q.get('workflow')! } : {}),
          ...(q.get('q') ? { text: q.get('q')! } : {}),
        });
        return send(res, 200, { entries });
      }
      if (parts[0] === 'cycles' && parts.length === 1) {
        const q = url.searchParams;
        const limit = Number(q.get('limit') ?? 50);
        if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CYCLES)
          throw new HttpError(400, `limit must be a whole number from 1 to ${MAX_CYCLES}`);
        const kind = q.get('kind') || undefined;
        if (kind !== undefined && !isCycleKind(kind)) throw new HttpError(400, `kind must be one of ${CYCLE_KINDS.join(', ')}`);
        return send(res, 200, { kinds: CYCLE_KINDS, cycles: await backend.cycles({ limit, ...(kind ? { kind } : {}) }) });
      }
      throw new HttpError(404, `no such endpoint GET ${url.pathname}`);
    }
    if (req.method === 'POST') {
      sameOrigin(req);
      const body = await readJson(req);
      if (parts[0] === 'approvals' && parts.length === 2) {
        const decision = body.decision;
        if (decision !== 'approve' && decision !== 'reject') throw new HttpError(400, 'decision must be "approve" or "reject"');
        const answer = optionalString(body, 'answer', 10_000);
        const decided = await backend.decide(
          { id: parts[1]!, approve: decision === 'approve', ...(answer !== undefined ? { answer } : {}) },
          opts.user,
        );
        dashboardLog.info('approval decided from the dashboard', { id: parts[1], decision, by: opts.user });
        return send(res, 200, { ok: true, ...decided, by: opts.user });
      }
      if (parts[0] === 'consents' && parts.length === 2) {
        const decision = body.decision;
        if (decision !== 'approve' && decision !== 'reject') throw new HttpError(400, 'decision must be "approve" or "reject"');
        const digest = optionalString(body, 'digest', 200);
        const note = optionalString(body, 'note', 2000);
        const decided = await backend.consent(
          { id: parts[1]!, approve: decision === 'approve', ...(digest ? { digest } : {}), ...(note ? { note } : {}) },
          opts.user,
        );
        dashboardLog.info('evolve candidate decided from the dashboard', { id: parts[1], decision, by: opts.user });
        return send(res, 200, { ok: true, ...decided, by: opts.user });
      }
      if (parts[0] === 'freeze' && parts.length === 1) {
        const reason = optionalString(body, 'reason', 500)?.trim() || undefined;
        const frozen = await backend.freeze(opts.user, reason);
        dashboardLog.warn('frozen from the dashboard', { by: opts.user, reason });
        return send(res, 200, { ok: true, frozen: true, by: opts.user, ...frozen });
      }
      if (parts[0] === 'thaw' && parts.length === 1) {
        await backend.thaw(opts.user);
        dashboardLog.info('thawed from the dashboard', { by: opts.user });
        return send(res, 200, { ok: true, frozen: false, by: opts.user });
      }
      throw new HttpError(404, `no such endpoint POST ${url.pathname}`);
    }
    res.setHeader('allow', 'GET, POST');
    throw new HttpError(405, `method ${req.method} not allowed`);
  }

  function serveFile(res: http.ServerResponse, file: string, extraHeaders: Record<string, string> = {}): void {
    const type = TYPES[path.extname(file)] ?? 'application/octet-stream';
    const body = file === path.join(publicDir, 'index.html') ? indexHtml : fs.readFileSync(file);
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache', ...extraHeaders });
    res.end(body);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('x-frame-options', 'DENY');
    const refused = hostRefusal(req);
    if (refused) throw new HttpError(403, refused);
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/health' && req.method === 'GET') return send(res, 200, { ok: true, name: 'forge-dashboard' });
    if (url.pathname.startsWith('/api/')) return api(req, res, url);
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `method ${req.method} not allowed`);
    if (url.pathname === '/' || url.pathname === '/index.html')
      return serveFile(res, path.join(publicDir, 'index.html'), { 'content-security-policy': csp });
    const vendored = vendor[url.pathname];
    if (vendored) return serveFile(res, vendored);
    // Files of web/public only: a name, no folders, so no path can leave it.
    const name = url.pathname.slice(1);
    if (/^[a-z0-9][a-z0-9.-]*\.(js|css|svg)$/i.test(name) && fs.existsSync(path.join(publicDir, name)))
      return serveFile(res, path.join(publicDir, name));
    throw new HttpError(404, `no such page ${url.pathname}`);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      if (err instanceof HttpError) return send(res, err.status, { ok: false, error: err.message, ...(err.fix ? { fix: err.fix } : {}) });
      if (err instanceof ForgeError) {
        // A rule a person broke (an approval already decided, an empty answer): said in the CLI's words.
        const status =
          err.code === 'COMPONENT_DOWN'
            ? 503
            : /NOT_FOUND$/.test(err.code)
              ? 404
              : /REFUSED|DECIDED|STALE|NOT_AWAITING/.test(err.code)
                ? 409
                : 400;
        return send(res, status, { ok: false, error: err.message, code: err.code, ...(err.fix ? { fix: err.fix } : {}) });
      }
      dashboardLog.error('dashboard request failed', { path: req.url, error: err.message });
      send(res, 500, { ok: false, error: err.message });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    port: address.port,
    async close() {
      if (timer) clearTimeout(timer);
      for (const res of listeners) res.end();
      listeners.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

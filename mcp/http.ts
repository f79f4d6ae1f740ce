import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { type McpBackend, type McpToken, mcpLog } from '../app/mcp-calls.ts';
import type { CatalogWatch } from './catalog-watch.ts';
import { InMemoryEventStore } from './event-store.ts';
import { createForgeMcpServer } from './server.ts';

/**
 * Forge's MCP server over Streamable HTTP (what `forge up` starts): one MCP session per client,
 * each with its own server and event store (resumability: a client that reconnects with
 * Last-Event-ID gets what it missed). Every /mcp request needs the bearer token; bound to loopback
 * by default, where the Host header must name loopback too (a web page cannot rebind a name to it).
 */

export interface HttpOptions {
  host: string;
  port: number;
  token: McpToken;
  version: string;
  /** a session with no request and no open stream for this long is closed */
  idleMs?: number;
}

interface Live {
  transport: StreamableHTTPServerTransport;
  server: Server;
  lastSeen: number;
  openStreams: number;
}

const MAX_BODY = 4 * 1024 * 1024;
const loopback = (host: string) => host === '127.0.0.1' || host === 'localhost' || host === '::1' || host.startsWith('127.');

function rpcError(res: http.ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: status === 401 ? -32001 : -32000, message }, id: null }));
}

const digest = (s: string) => createHash('sha256').update(s).digest();

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw Object.assign(new Error(`request body over ${MAX_BODY} bytes`), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function serveHttp(backend: McpBackend, watch: CatalogWatch, opts: HttpOptions) {
  const sessions = new Map<string, Live>();
  const expected = digest(opts.token.token);
  const idleMs = opts.idleMs ?? 30 * 60_000;
  const where = opts.token.from === 'FORGE_MCP_TOKEN' ? "FORGE_MCP_TOKEN in the server's environment" : `the token in ${opts.token.from}`;

  /** Why the request may not reach an MCP session, or undefined when it may. */
  function refusal(req: http.IncomingMessage): { status: number; message: string } | undefined {
    if (loopback(opts.host)) {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
      if (!loopback(host)) return { status: 403, message: `Host ${req.headers.host} refused: this endpoint serves loopback only` };
      const origin = req.headers.origin;
      if (origin && !/^https?:\/\/(127\.[\d.]+|localhost|\[::1\])(:\d+)?$/.test(origin))
        return { status: 403, message: `Origin ${origin} refused: this endpoint serves loopback only` };
    }
    const auth = req.headers.authorization;
    if (!auth)
      return {
        status: 401,
        message: `missing bearer token: Forge's MCP endpoint needs the header "Authorization: Bearer <token>", with ${where}`,
      };
    const match = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (!match || !timingSafeEqual(digest(match[1]!.trim()), expected))
      return { status: 401, message: `wrong bearer token: send ${where} as "Authorization: Bearer <token>"` };
    return undefined;
  }

  async function openSession(): Promise<Live> {
    const server = createForgeMcpServer(backend, watch, opts.version);
    const live: Live = { server, lastSeen: Date.now(), openStreams: 0 } as Live;
    live.transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new InMemoryEventStore(),
      onsessioninitialized: (id) => {
        sessions.set(id, live);
        mcpLog.info('mcp session opened', { session: id, client: server.getClientVersion()?.name });
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
        mcpLog.info('mcp session closed by the client', { session: id });
      },
    });
    live.transport.onclose = () => {
      if (live.transport.sessionId) sessions.delete(live.transport.sessionId);
    };
    await server.connect(live.transport);
    return live;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/health' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, name: 'forge-mcp', sessions: sessions.size }));
      return;
    }
    if (url.pathname !== '/mcp') return rpcError(res, 404, `no such endpoint ${url.pathname}: Forge's MCP endpoint is /mcp`);
    const refused = refusal(req);
    if (refused) {
      mcpLog.warn('mcp request refused', { status: refused.status, reason: refused.message, remote: req.socket.remoteAddress });
      return rpcError(
        res,
        refused.status,
        refused.message,
        refused.status === 401 ? { 'www-authenticate': 'Bearer realm="forge", error="invalid_token"' } : {},
      );
    }

    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (req.method === 'POST') {
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req));
      } catch (err) {
        const status = (err as { status?: number }).status ?? 400;
        return rpcError(res, status, status === 413 ? (err as Error).message : `Parse error: ${(err as Error).message}`);
      }
      if (existing) return track(existing, req, res, body);
      if (sessionId === undefined && isInitializeRequest(body)) return track(await openSession(), req, res, body);
      if (sessionId !== undefined)
        return rpcError(res, 404, `Session not found: ${String(sessionId)} (it ended or the server restarted): initialize again`);
      return rpcError(res, 400, 'Bad Request: no mcp-session-id header; begin with an initialize request');
    }
    if (req.method === 'GET' || req.method === 'DELETE') {
      if (!existing)
        return rpcError(
          res,
          sessionId ? 404 : 400,
          sessionId ? `Session not found: ${String(sessionId)}` : 'Bad Request: no mcp-session-id header',
        );
      return track(existing, req, res);
    }
    rpcError(res, 405, `Method ${req.method} not allowed`, { allow: 'GET, POST, DELETE' });
  }

  /** Hands the request to its session, counting open streams so an idle session can be told from a listening one. */
  async function track(live: Live, req: http.IncomingMessage, res: http.ServerResponse, body?: unknown): Promise<void> {
    live.lastSeen = Date.now();
    live.openStreams++;
    res.once('close', () => {
      live.openStreams--;
      live.lastSeen = Date.now();
    });
    const handled = live.transport.handleRequest(req, res, body);
    if (req.method === 'GET' && !req.headers['last-event-id']) void announceOnOpen(live, res);
    await handled;
  }

  /**
   * A fresh listening stream (no Last-Event-ID) opens with a tools/list_changed: the client learns
   * of any change it missed while it had no stream, and holds an event id from then on, so a stream
   * that drops later resumes with Last-Event-ID and the event store replays what it missed. (The SDK
   * primes only request streams with an event id, not this one.)
   */
  async function announceOnOpen(live: Live, res: http.ServerResponse): Promise<void> {
    // The transport registers the stream before it answers: once the headers are out, a notification reaches it.
    for (let i = 0; i < 200 && !res.headersSent && !res.destroyed; i++) await new Promise((r) => setTimeout(r, 10));
    if (res.destroyed || res.statusCode !== 200) return;
    await live.server.sendToolListChanged().catch(() => {});
  }

  const httpServer = http.createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      mcpLog.error('mcp request failed', { error: err.message });
      rpcError(res, 500, `Internal error: ${err.message}`);
    });
  });
  const sweep = setInterval(() => {
    for (const [id, live] of sessions) {
      if (live.openStreams > 0 || Date.now() - live.lastSeen < idleMs) continue;
      sessions.delete(id);
      mcpLog.info('mcp session closed: idle', { session: id });
      void live.server.close().catch(() => {});
    }
  }, 60_000);
  sweep.unref();

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(opts.port, opts.host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const address = httpServer.address() as AddressInfo;
  return {
    port: address.port,
    sessions: () => sessions.size,
    async close() {
      clearInterval(sweep);
      for (const live of sessions.values()) await live.server.close().catch(() => {});
      sessions.clear();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}

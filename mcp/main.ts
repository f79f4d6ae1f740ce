import { parseArgs } from 'node:util';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { joinDashedNumbers, parsePortOption, parserMessage } from '../app/command-line.ts';
import { loadConfig } from '../app/context.ts';
import { ForgeError } from '../app/errors.ts';
import { mcpHttpUrl, mcpLog, openMcpBackend, requireMcpToken } from '../app/mcp-calls.ts';
import { watchCatalog } from './catalog-watch.ts';
import { serveHttp } from './http.ts';
import { createForgeMcpServer } from './server.ts';

/**
 * `forge mcp`: Forge's catalog as an MCP server. On stdio (what an MCP client spawns) by default;
 * with --http, the Streamable HTTP endpoint that `forge up` runs in the background. stdout belongs
 * to the protocol on stdio, so everything a person reads goes to stderr.
 */
/** The help text, with the endpoint where this configuration puts it (or the variables that set it, when the configuration does not load). */
function usage(): string {
  let endpoint: string;
  try {
    endpoint = mcpHttpUrl(loadConfig());
  } catch {
    endpoint = 'http://$FORGE_MCP_HOST:$FORGE_MCP_PORT/mcp';
  }
  return `forge mcp [--http [--host h] [--port n]]

  forge mcp                  Forge's MCP server on stdio (for Claude Code, Claude Desktop, any MCP client)
  forge mcp --http           the Streamable HTTP endpoint (forge up starts it): ${endpoint}
                             (FORGE_MCP_HOST, FORGE_MCP_PORT; --host and --port override them),
                             bearer token FORGE_MCP_TOKEN (or the one forge up wrote to $FORGE_HOME/mcp-token)
`;
}

const VERSION = '0.1.0';

export async function main(argv: string[]): Promise<number> {
  let values: { http?: boolean; host?: string; port?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: joinDashedNumbers(argv, ['--port']),
      options: { http: { type: 'boolean' }, host: { type: 'string' }, port: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    process.stderr.write(`error: ${parserMessage(err as Error)}\n${usage()}`);
    return 2;
  }
  if (values.help) {
    process.stderr.write(usage());
    return 0;
  }
  const port = values.port === undefined ? undefined : parsePortOption(values.port);
  if (port && 'problem' in port) {
    process.stderr.write(`error: ${port.problem}\n${usage()}`);
    return 2;
  }
  try {
    const cfg = loadConfig();
    if (values.http)
      return await http({ ...cfg, FORGE_MCP_HOST: values.host ?? cfg.FORGE_MCP_HOST, FORGE_MCP_PORT: port?.port ?? cfg.FORGE_MCP_PORT });
    return await stdio(cfg);
  } catch (err) {
    if (err instanceof ForgeError) {
      process.stderr.write(`error: ${err.message}\n${err.fix ? `  fix: ${err.fix}\n` : ''}`);
      return 1;
    }
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  }
}

type Cfg = ReturnType<typeof loadConfig>;

async function stdio(cfg: Cfg): Promise<number> {
  const backend = openMcpBackend(cfg);
  const watch = watchCatalog(backend);
  const server = createForgeMcpServer(backend, watch, VERSION);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    // The client closing our stdin is the end of the session.
    process.stdin.once('end', resolve);
    process.stdin.once('close', resolve);
    transport.onclose = resolve;
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await server.connect(transport);
  mcpLog.info('forge mcp serving on stdio');
  await closed;
  watch.stop();
  await server.close().catch(() => {});
  await backend.close();
  return 0;
}

async function http(cfg: Cfg): Promise<number> {
  const token = requireMcpToken(cfg);
  const backend = openMcpBackend(cfg);
  const watch = watchCatalog(backend);
  const server = await serveHttp(backend, watch, { host: cfg.FORGE_MCP_HOST, port: cfg.FORGE_MCP_PORT, token, version: VERSION });
  const url = mcpHttpUrl({ ...cfg, FORGE_MCP_PORT: server.port });
  mcpLog.info('forge mcp serving over Streamable HTTP', { url, token: token.from });
  process.stderr.write(`Forge MCP endpoint: ${url} (bearer token: ${token.from})\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  watch.stop();
  await server.close();
  await backend.close();
  return 0;
}

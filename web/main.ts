import { parseArgs } from 'node:util';
import { joinDashedNumbers, parsePortOption, parserMessage } from '../app/command-line.ts';
import { loadConfig, localUser } from '../app/context.ts';
import { dashboardLog, dashboardUrl, ensureDashboardToken, openDashboardBackend } from '../app/dashboard.ts';
import { ForgeError } from '../app/errors.ts';
import { serveDashboard } from './server.ts';

/**
 * `forge dashboard`: the web dashboard in the foreground (forge up runs the same in the
 * background). Prints the address to open, with the bearer token in its fragment.
 */
/** The help text, with the address where this configuration puts it (or the variables that set it, when the configuration does not load). */
function usage(): string {
  let address: string;
  try {
    address = dashboardUrl(loadConfig());
  } catch {
    address = 'http://$FORGE_DASHBOARD_HOST:$FORGE_DASHBOARD_PORT/';
  }
  return `forge dashboard [--host h] [--port n]

  the web dashboard on ${address} (FORGE_DASHBOARD_HOST, FORGE_DASHBOARD_PORT;
  --host and --port override them): the catalog with versions, diffs and reliability plots, what waits
  for you (approve / reject), the kill switch and the audit log, live. Open the address it prints: it
  carries the bearer token (the MCP endpoint's, FORGE_MCP_TOKEN or $FORGE_HOME/mcp-token).
`;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--json')) {
    // A server has no result line, but a script that asked for JSON reads stdout for one: it gets
    // the CLI's error line (code, message, fix) there, like every other command's refusal.
    const message = "unknown option '--json': forge dashboard is a server, with no result to print as JSON";
    const fix =
      'run it without --json: it prints the address to open (token included) and serves until stopped; forge up runs it in the background and prints the same address';
    process.stdout.write(`${JSON.stringify({ ok: false, error: 'USAGE', message, fix })}\n`);
    return 2;
  }
  let values: { host?: string; port?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: joinDashedNumbers(argv, ['--port']),
      options: { host: { type: 'string' }, port: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    process.stderr.write(`error: ${parserMessage(err as Error)}\n${usage()}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(usage());
    return 0;
  }
  const parsedPort = values.port === undefined ? undefined : parsePortOption(values.port);
  if (parsedPort && 'problem' in parsedPort) {
    process.stderr.write(`error: ${parsedPort.problem}\n${usage()}`);
    return 2;
  }
  const port = parsedPort?.port;
  try {
    const base = loadConfig();
    const cfg = {
      ...base,
      FORGE_DASHBOARD_HOST: values.host ?? base.FORGE_DASHBOARD_HOST,
      FORGE_DASHBOARD_PORT: port ?? base.FORGE_DASHBOARD_PORT,
    };
    const token = ensureDashboardToken(cfg);
    const user = localUser();
    const backend = openDashboardBackend(cfg, { user });
    const server = await serveDashboard(backend, { host: cfg.FORGE_DASHBOARD_HOST, port: cfg.FORGE_DASHBOARD_PORT, token, user });
    const url = dashboardUrl({ ...cfg, FORGE_DASHBOARD_PORT: server.port }, token.token);
    dashboardLog.info('forge dashboard serving', { url: dashboardUrl({ ...cfg, FORGE_DASHBOARD_PORT: server.port }), token: token.from });
    process.stdout.write(`Forge dashboard: ${url}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    await server.close();
    await backend.close();
    return 0;
  } catch (err) {
    if (err instanceof ForgeError) {
      process.stderr.write(`error: ${err.message}\n${err.fix ? `  fix: ${err.fix}\n` : ''}`);
      return 1;
    }
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  }
}

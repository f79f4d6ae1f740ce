import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { ForgeConfig } from '../domain/config.ts';
import { ComponentDownError } from '../domain/errors.ts';
import { SEARCH_ATTRIBUTES } from '../domain/search-attributes.ts';
import { log } from '../services/log.ts';
import { logFile, ownServiceListening, portOpen, runningPid, SECOND_HOME_SETTINGS, startDetached, waitFor } from './processes.ts';
import { ensureTemporalCli } from './temporal-cli.ts';

export function devServerArgs(opts: { dbFile: string; port: number; uiPort: number; namespace: string; headless?: boolean }): string[] {
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    opts.dbFile,
    '--port',
    String(opts.port),
    '--ui-port',
    String(opts.uiPort),
    '--ip',
    '127.0.0.1',
    '--namespace',
    opts.namespace,
    '--log-level',
    'warn',
    // An activity scheduled on the queue of the worker that ran the workflow task (a model turn) is
    // handed to that worker in the reply, without a trip through matching.
    '--dynamic-config-value',
    'system.enableActivityEagerExecution=true',
    // SQLite's defaults (a rollback journal, synchronous=FULL) fsync the journal and the file on
    // every history write, several per workflow task. A write-ahead log synced at checkpoints
    // survives any crash of the server's process (a commit is in the log once written); only the
    // machine losing power could lose the last ones.
    '--sqlite-pragma',
    'journal_mode=wal',
    '--sqlite-pragma',
    'synchronous=normal',
  ];
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  if (opts.headless) args.push('--headless');
  return args;
}

export interface TemporalEndpoint {
  address: string;
  namespace: string;
  uiUrl: string | null;
  managed: boolean;
}

/**
 * TEMPORAL_ADDRESS when set; otherwise Forge's own dev server, started in the background when it
 * is not already answering, with history persisted in <home>/temporal.db.
 */
export async function ensureTemporal(cfg: ForgeConfig): Promise<TemporalEndpoint & { started: boolean }> {
  if (cfg.TEMPORAL_ADDRESS) {
    return {
      address: cfg.TEMPORAL_ADDRESS,
      namespace: cfg.TEMPORAL_NAMESPACE,
      uiUrl: cfg.TEMPORAL_UI_URL ?? null,
      managed: false,
      started: false,
    };
  }
  const endpoint = localEndpoint(cfg);
  const fix = `give this home settings of its own (${SECOND_HOME_SETTINGS}), or set TEMPORAL_ADDRESS=127.0.0.1:${cfg.TEMPORAL_PORT} to use that server on purpose`;
  if (await ownServiceListening(cfg.home, { name: 'temporal', port: cfg.TEMPORAL_PORT, what: 'Temporal dev server', fix }))
    return { ...endpoint, started: false };
  const cli = await ensureTemporalCli(cfg);
  fs.mkdirSync(cfg.home, { recursive: true });
  startDetached(cfg.home, {
    name: 'temporal',
    command: cli,
    args: devServerArgs({
      dbFile: path.join(cfg.home, 'temporal.db'),
      port: cfg.TEMPORAL_PORT,
      uiPort: cfg.TEMPORAL_UI_PORT,
      namespace: cfg.TEMPORAL_NAMESPACE,
    }),
  });
  await waitFor('Temporal dev server', () => portOpen(cfg.TEMPORAL_PORT), 60_000, logFile(cfg.home, 'temporal'));
  await waitForNamespace(endpoint);
  log.info('temporal dev server started', { address: endpoint.address, ui: endpoint.uiUrl });
  return { ...endpoint, started: true };
}

export function localEndpoint(cfg: ForgeConfig): TemporalEndpoint {
  return {
    address: `127.0.0.1:${cfg.TEMPORAL_PORT}`,
    namespace: cfg.TEMPORAL_NAMESPACE,
    uiUrl: `http://localhost:${cfg.TEMPORAL_UI_PORT}`,
    managed: true,
  };
}

export function temporalEndpoint(cfg: ForgeConfig): TemporalEndpoint {
  return cfg.TEMPORAL_ADDRESS
    ? { address: cfg.TEMPORAL_ADDRESS, namespace: cfg.TEMPORAL_NAMESPACE, uiUrl: cfg.TEMPORAL_UI_URL ?? null, managed: false }
    : localEndpoint(cfg);
}

export function managedTemporalPid(cfg: ForgeConfig): number | null {
  return runningPid(cfg.home, 'temporal');
}

export async function connectTemporal(cfg: ForgeConfig, address = temporalEndpoint(cfg).address): Promise<Connection> {
  const tls =
    cfg.TEMPORAL_TLS_CERT && cfg.TEMPORAL_TLS_KEY
      ? { clientCertPair: { crt: fs.readFileSync(cfg.TEMPORAL_TLS_CERT), key: fs.readFileSync(cfg.TEMPORAL_TLS_KEY) } }
      : cfg.TEMPORAL_TLS || cfg.TEMPORAL_API_KEY
        ? true
        : undefined;
  // Forge's own dev server that is not listening is down: say so now, not after the 5 s connect timeout.
  if (!cfg.TEMPORAL_ADDRESS && address === temporalEndpoint(cfg).address && !(await portOpen(cfg.TEMPORAL_PORT)))
    throw new ComponentDownError('Temporal', `nothing listens on ${address} (Forge's dev server is not running)`, 'run: forge up');
  try {
    return await Connection.connect({ address, tls, apiKey: cfg.TEMPORAL_API_KEY, connectTimeout: '5s' });
  } catch (err) {
    throw new ComponentDownError(
      'Temporal',
      `cannot reach ${address}: ${(err as Error).message}`,
      cfg.TEMPORAL_ADDRESS ? 'check TEMPORAL_ADDRESS / TLS settings, or unset it to let Forge run a dev server' : 'run: forge up',
    );
  }
}

export async function temporalClient(cfg: ForgeConfig): Promise<Client> {
  const connection = await connectTemporal(cfg);
  return new Client({ connection, namespace: cfg.TEMPORAL_NAMESPACE });
}

/** The dev server answers on its port a moment before the namespace is usable. */
async function waitForNamespace(endpoint: TemporalEndpoint): Promise<void> {
  const connection = await Connection.connect({ address: endpoint.address });
  try {
    await waitFor(
      `Temporal namespace ${endpoint.namespace}`,
      async () => {
        try {
          await connection.workflowService.describeNamespace({ namespace: endpoint.namespace });
          return true;
        } catch {
          return false;
        }
      },
      30_000,
    );
  } finally {
    await connection.close();
  }
}

/** On a server Forge did not start, register the custom search attributes (idempotent). */
export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = Object.entries(SEARCH_ATTRIBUTES).filter(([name]) => !(name in (existing.customAttributes ?? {})));
  if (!missing.length) return;
  const Keyword = 2; // temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map(([name]) => [name, Keyword])),
  });
}

export function temporalCliVersion(cli: string): string | null {
  try {
    return execFileSync(cli, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

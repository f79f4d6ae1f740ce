import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ForgeConfig } from '../domain/config.ts';
import { connect, ping, type Sql } from '../services/db.ts';
import { migrate } from './migrate.ts';
import { logFile, portOpen, startDetached, waitFor } from './processes.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

export function embeddedUrl(cfg: ForgeConfig): string {
  return `postgres://postgres:postgres@127.0.0.1:${cfg.FORGE_PGLITE_PORT}/postgres`;
}

/** The database URL Forge uses: DATABASE_URL, or the embedded PGlite server's. */
export function databaseUrl(cfg: ForgeConfig): string {
  return cfg.DATABASE_URL ?? embeddedUrl(cfg);
}

export function usesEmbedded(cfg: ForgeConfig): boolean {
  return !cfg.DATABASE_URL;
}

/** Starts the embedded server in the background when DATABASE_URL is unset and it is not running. */
export async function ensureDatabaseServer(cfg: ForgeConfig): Promise<{ url: string; started: boolean }> {
  const url = databaseUrl(cfg);
  if (!usesEmbedded(cfg) || (await portOpen(cfg.FORGE_PGLITE_PORT))) return { url, started: false };
  const dataDir = path.join(cfg.home, 'pgdata');
  fs.mkdirSync(dataDir, { recursive: true });
  startDetached(cfg.home, {
    name: 'pglite',
    command: process.execPath,
    args: ['--import', 'tsx', path.join(here, 'pglite-server.ts'), dataDir, String(cfg.FORGE_PGLITE_PORT)],
    cwd: path.join(here, '..'),
  });
  await waitFor('embedded Postgres (PGlite)', () => portOpen(cfg.FORGE_PGLITE_PORT), 60_000, logFile(cfg.home, 'pglite'));
  return { url, started: true };
}

/** Connects, checks the server answers, and applies migrations. */
export async function openDatabase(cfg: ForgeConfig, opts: { migrate?: boolean; max?: number } = {}): Promise<Sql> {
  const url = databaseUrl(cfg);
  const sql = connect(url, { max: opts.max ?? (usesEmbedded(cfg) ? 2 : 5) });
  await ping(sql, url);
  if (opts.migrate !== false) await migrate(sql);
  return sql;
}

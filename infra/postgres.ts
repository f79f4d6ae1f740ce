import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import type { ForgeConfig } from '../domain/config.ts';
import { connect, ping, type Sql } from '../services/db.ts';
import { migrate } from './migrate.ts';
import { logFile, ownServiceListening, portOpen, SECOND_HOME_SETTINGS, startDetached, waitFor } from './processes.ts';

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
  if (!usesEmbedded(cfg)) return { url, started: false };
  const fix = `give this home settings of its own (${SECOND_HOME_SETTINGS}), or set DATABASE_URL to use that database on purpose`;
  if (await ownServiceListening(cfg.home, { name: 'pglite', port: cfg.FORGE_PGLITE_PORT, what: 'embedded Postgres (PGlite)', fix }))
    return { url, started: false };
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
  await ping(sql, url, { embedded: usesEmbedded(cfg) });
  if (opts.migrate !== false) await migrate(sql);
  return sql;
}

/**
 * DATABASE_URL may name a database the server does not have yet (the test runner names one per
 * run): create it when missing. Concurrent creators are fine: the loser's "already exists" is success.
 */
export async function ensureDatabaseExists(url: string): Promise<void> {
  const probe = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await probe`select 1`;
    return;
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000') throw err;
  } finally {
    await probe.end({ timeout: 1 });
  }
  const admin = postgres(url.replace(/\/[^/?]*(\?|$)/, '/postgres$1'), { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database "${new URL(url).pathname.slice(1).replace(/"/g, '""')}"`);
  } catch (err) {
    if (!['42P04', '23505'].includes((err as { code?: string }).code ?? '')) throw err;
  } finally {
    await admin.end({ timeout: 1 });
  }
}

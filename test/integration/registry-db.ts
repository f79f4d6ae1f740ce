import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { migrate } from '../../infra/migrate.ts';
import { ensureDatabaseExists } from '../../infra/postgres.ts';
import type { Sql } from '../../services/db.ts';

/**
 * Registry integration tests' database: a schema of its own in the DATABASE_URL database, so test
 * files run in parallel, dropped at the end. Shared by registry.test.ts and discovery.test.ts.
 */
export interface ScratchDb {
  sql: Sql;
  schema: string;
  drop(): Promise<void>;
}

function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run with `npm test` (it provisions Postgres) or point it at a Postgres server');
  return url;
}

export async function scratchDb(label: string): Promise<ScratchDb> {
  const url = databaseUrl();
  await ensureDatabaseExists(url);
  const schema = `t_${label}_${randomBytes(4).toString('hex')}`;
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  // pg_trgm must live in public, not in the scratch schema: dropping that would drop it for everyone.
  try {
    await admin`create extension if not exists pg_trgm with schema public`;
  } catch (err) {
    if (!['42710', '23505'].includes((err as { code?: string }).code ?? '')) throw err;
  }
  await admin.unsafe(`create schema ${schema}`);
  const sql = postgres(url, { max: 4, onnotice: () => {}, connection: { search_path: `${schema},public` } });
  await migrate(sql);
  return {
    sql,
    schema,
    async drop() {
      await sql.end({ timeout: 2 });
      await admin.unsafe(`drop schema if exists ${schema} cascade`);
      await admin.end({ timeout: 2 });
    },
  };
}

export async function scratchDir(label: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `forge-${label}-`));
  return { dir, remove: () => fs.rm(dir, { recursive: true, force: true }) };
}

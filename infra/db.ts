import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { ComponentDownError } from '../domain/errors.ts';
import { log } from './log.ts';

export type Sql = postgres.Sql;

const migrationsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

export function connect(url: string, opts: { max?: number } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 5,
    onnotice: () => {},
    connect_timeout: 10,
    // PGlite serves one connection at a time; callers pass max: 1 for it.
  });
}

/** Fails fast with a clear message when the server does not answer. */
export async function ping(sql: Sql, url: string): Promise<void> {
  try {
    await sql`select 1`;
  } catch (err) {
    throw new ComponentDownError(
      'Postgres',
      `${redact(url)}: ${(err as Error).message}`,
      'check DATABASE_URL, or unset it to use the embedded database (forge up)',
    );
  }
}

export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]+@/, '//$1:***@');
}

/**
 * Applies infra/migrations/NNN_name.sql in order, each in its own transaction,
 * under an advisory lock so concurrent starters do not race. Idempotent.
 */
export async function migrate(sql: Sql): Promise<string[]> {
  const files = (await fs.readdir(migrationsDir)).filter((f) => /^\d{3}_.+\.sql$/.test(f)).sort();
  const applied: string[] = [];
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(727274)`;
    await tx`create table if not exists schema_migrations (name text primary key, applied_at timestamptz not null default now())`;
    const done = new Set((await tx<{ name: string }[]>`select name from schema_migrations`).map((r) => r.name));
    for (const file of files) {
      if (done.has(file)) continue;
      const body = await fs.readFile(path.join(migrationsDir, file), 'utf8');
      await tx.unsafe(body);
      await tx`insert into schema_migrations (name) values (${file})`;
      applied.push(file);
    }
  });
  if (applied.length) log.info('migrations applied', { applied });
  return applied;
}

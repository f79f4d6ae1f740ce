import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type postgres from 'postgres';
import { fillValueKinds } from '../services/catalog/search.ts';
import type { Sql } from '../services/db.ts';
import { log } from '../services/log.ts';

const migrationsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

/** Data a migration needs that only TypeScript can compute, in the migration's transaction. */
const afterMigration: Record<string, (tx: postgres.TransactionSql) => Promise<unknown>> = {
  '082_discovery_value_kinds.sql': fillValueKinds,
};

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
      await afterMigration[file]?.(tx);
      await tx`insert into schema_migrations (name) values (${file})`;
      applied.push(file);
    }
  });
  if (applied.length) log.info('migrations applied', { applied });
  return applied;
}

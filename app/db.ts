import type { ForgeConfig } from '../domain/config.ts';
import { openDatabase } from '../infra/postgres.ts';
import type { Sql } from '../services/db.ts';

/** One short-lived connection for a CLI command (the embedded server serves few at once). */
export async function withDb<T>(cfg: ForgeConfig, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = await openDatabase(cfg, { max: 1 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 2 });
  }
}

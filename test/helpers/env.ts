import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { type ForgeConfig, loadConfig } from '../../domain/config.ts';
import { migrate } from '../../infra/migrate.ts';
import { connect, type Sql } from '../../services/db.ts';

/** A config for one test: the run's shared services, with unique task queues so files don't collide. */
export function testConfig(overrides: Record<string, string> = {}): ForgeConfig {
  const id = randomBytes(4).toString('hex');
  return loadConfig(
    { ...process.env, FORGE_TASK_QUEUE: `test-control-${id}`, FORGE_SANDBOX_QUEUE: `test-sandbox-${id}`, ...overrides },
    process.env.FORGE_HOME ?? '/tmp/forge-test-home',
  );
}

function adminUrl(): string {
  const url = process.env.FORGE_TEST_ADMIN_URL;
  if (!url) throw new Error('FORGE_TEST_ADMIN_URL is not set: run the suite with `npm test`, which provisions Postgres');
  return url;
}

/** A fresh, migrated database on the real Postgres server, dropped by `drop()`. */
export async function freshDatabase(): Promise<{ url: string; sql: Sql; drop(): Promise<void> }> {
  const name = `forge_t_${randomBytes(5).toString('hex')}`;
  const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = adminUrl().replace(/\/[^/]*$/, `/${name}`);
  const sql = connect(url);
  await migrate(sql);
  return {
    url,
    sql,
    async drop() {
      await sql.end({ timeout: 2 });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

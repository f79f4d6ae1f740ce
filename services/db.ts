import postgres from 'postgres';
import { ComponentDownError } from '../domain/errors.ts';

export type Sql = postgres.Sql;

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

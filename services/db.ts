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

/**
 * Fails fast with a clear message when the server does not answer. The fix depends on whose server
 * it is: a DATABASE_URL a person set is theirs to check; the embedded one (DATABASE_URL unset) is
 * started by forge up, and telling that person to check a DATABASE_URL they never set sends them
 * the wrong way.
 */
export async function ping(sql: Sql, url: string, opts: { embedded?: boolean } = {}): Promise<void> {
  try {
    await sql`select 1`;
  } catch (err) {
    throw new ComponentDownError(
      'Postgres',
      `${redact(url)}: ${(err as Error).message}`,
      opts.embedded
        ? "forge up (starts Forge's embedded Postgres, which it uses while DATABASE_URL is unset)"
        : 'check DATABASE_URL and that its server runs, or unset it to use the embedded database (forge up)',
    );
  }
}

export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]+@/, '//$1:***@');
}

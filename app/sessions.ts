import type { ForgeConfig } from '../domain/config.ts';
import { InvalidInputError } from '../domain/errors.ts';
import { checkedSessionId, type SessionDetail, SessionNotFoundError, type SessionSummary } from '../domain/session.ts';
import { createSessionStore } from '../services/runs/sessions.ts';
import { withSession } from './context.ts';
import { withDb } from './db.ts';
import { reconcileQuietly } from './reconcile.ts';

export type { SessionDetail, SessionSummary };

/** Sessions, most recently continued first (at most `limit`); `total` says how many there are. Works while frozen. */
export async function listSessions(
  cfg: ForgeConfig,
  opts: { limit?: number } = {},
): Promise<{ sessions: SessionSummary[]; total: number }> {
  const limit = opts.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new InvalidInputError('limit', `expected a whole number from 1 to 1000, got ${limit}`);
  return withDb(cfg, (sql) => createSessionStore(sql).listSessions({ limit }));
}

/**
 * One session with its tasks in order: what each asked, how it ended, its answer and the tools it
 * called. A task still marked running is first compared with Temporal, so one terminated, cancelled
 * or timed out reads so, with its cause.
 */
export async function showSession(cfg: ForgeConfig, id: string): Promise<SessionDetail> {
  const sessionId = checkedSessionId(id);
  await withSession(cfg, (session) => reconcileQuietly(session));
  const detail = await withDb(cfg, (sql) => createSessionStore(sql).showSession(sessionId));
  if (!detail) throw new SessionNotFoundError(sessionId);
  return detail;
}

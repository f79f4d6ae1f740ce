/**
 * A tool's calls over time, as the dashboard plots them, and cheap marks of what changed in the
 * catalog, the audit log and the ledgers, so a surface in another process can poll them and
 * refresh only what moved.
 */
import type { Sql } from '../db.ts';

export interface CallPoint {
  at: string;
  version: number;
  success: boolean;
  latencyMs: number;
}

/** The tool's last `limit` calls (every version), oldest first. */
export async function invocationSeries(sql: Sql, name: string, limit = 500): Promise<CallPoint[]> {
  const rows = await sql<{ created_at: Date; version: number; success: boolean; latency_ms: number }[]>`
    select created_at, version, success, latency_ms from (
      select id, created_at, version, success, latency_ms from invocations where tool = ${name}
      order by created_at desc, id desc limit ${limit}
    ) recent order by created_at, id`;
  return rows.map((r) => ({ at: r.created_at.toISOString(), version: r.version, success: r.success, latencyMs: r.latency_ms }));
}

export interface ActivityMarks {
  /** changes with every call metered and every tool registered, promoted, rolled back, pinned or archived */
  catalog: string;
  /** the newest audit entry's id */
  audit: number;
}

export async function activityMarks(sql: Sql): Promise<ActivityMarks> {
  const [row] = await sql<{ calls: string; versions: number; tools: string; audit: string }[]>`
    select (select coalesce(max(id), 0) from invocations)::text as calls,
           (select count(*)::int from tool_versions) as versions,
           (select coalesce(string_agg(name || '@' || coalesce(current_version, 0) || ':' || status || ':' || pinned || ':' || updated_at, ',' order by name), '') from tools) as tools,
           (select coalesce(max(id), 0) from audit_log)::text as audit`;
  return { catalog: `${row?.calls}|${row?.versions}|${row?.tools}`, audit: Number(row?.audit ?? 0) };
}

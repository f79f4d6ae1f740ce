import { evaluateQuality, type QualityCall, type QualityEvaluation, type QualityPolicy } from '../../domain/quality.ts';
import type { ToolStatus } from '../../domain/trust.ts';
import { harness } from '../../harness/index.ts';
import type { Sql } from '../db.ts';
import { ToolNotFoundError } from './store.ts';

/**
 * The evaluator over the metered calls: reads a tool's last N invocations (invocations table,
 * written by metering.ts) and judges them with domain/quality.ts under the harness's policy.
 *
 * A tool is judged by the calls of its current version: a promoted rewrite or a rollback starts
 * from no evidence, so the failures that caused a rewrite never condemn the version that fixed
 * them (it is 'insufficient-data' until it has made policy.minCalls calls of its own).
 */

export interface ToolScore extends QualityEvaluation {
  tool: string;
  /** the version judged: the current one; null when the tool has none (then every call counts) */
  version: number | null;
  status: ToolStatus;
  pinned: boolean;
  /** how many calls the evaluation reads at most (policy.window) */
  window: number;
  /** every metered call of the judged version, not only the window: `evaluationDue` counts these */
  totalCalls: number;
}

export interface ScoreOptions {
  /** judge this version's calls instead of the current one's; 'all' = every version's */
  version?: number | 'all';
  /** read this many calls instead of policy.window */
  window?: number;
}

interface CallRow {
  success: boolean;
  latency_ms: number;
  error: string | null;
}

export type Quality = ReturnType<typeof createQuality>;

export function createQuality(deps: { sql: Sql; policy?: QualityPolicy }) {
  const { sql } = deps;
  const policy = deps.policy ?? harness.policy.quality;

  /** A tool's last `limit` calls, newest first (of one version, or of all with version null). */
  async function recentCalls(name: string, version: number | null, limit: number): Promise<QualityCall[]> {
    const rows = await sql<CallRow[]>`
      select success, latency_ms, error from invocations
      where tool = ${name} ${version === null ? sql`` : sql`and version = ${version}`}
      order by created_at desc, id desc limit ${limit}`;
    return rows.map((r) => ({ success: r.success, latencyMs: r.latency_ms, error: r.error }));
  }

  async function judge(
    tool: { name: string; current_version: number | null; status: ToolStatus; pinned: boolean },
    opts: ScoreOptions,
  ): Promise<ToolScore> {
    const window = opts.window ?? policy.window;
    const version = opts.version === 'all' ? null : (opts.version ?? tool.current_version);
    const calls = await recentCalls(tool.name, version, window);
    const [count] = await sql<{ n: number }[]>`
      select count(*)::int as n from invocations where tool = ${tool.name} ${version === null ? sql`` : sql`and version = ${version}`}`;
    return {
      tool: tool.name,
      version,
      status: tool.status,
      pinned: tool.pinned,
      window,
      totalCalls: count?.n ?? 0,
      ...evaluateQuality(calls, { ...policy, window }),
    };
  }

  type ToolFacts = { name: string; current_version: number | null; status: ToolStatus; pinned: boolean };

  /** One tool's quality now. Throws ToolNotFoundError for a name the catalog does not hold. */
  async function scoreTool(name: string, opts: ScoreOptions = {}): Promise<ToolScore> {
    const [tool] = await sql<ToolFacts[]>`select name, current_version, status, pinned from tools where name = ${name}`;
    if (!tool) throw new ToolNotFoundError(name);
    return judge(tool, opts);
  }

  /** Every tool's quality, by name; archived tools only when asked. */
  async function scoreAll(opts: { includeArchived?: boolean } = {}): Promise<ToolScore[]> {
    const tools = await sql<ToolFacts[]>`
      select name, current_version, status, pinned from tools
      where ${opts.includeArchived ?? false} or status <> 'archived' order by name`;
    const out: ToolScore[] = [];
    for (const t of tools) out.push(await judge(t, {}));
    return out;
  }

  return { policy, recentCalls, scoreTool, scoreAll };
}

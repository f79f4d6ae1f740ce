import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ForgeConfig } from '../domain/config.ts';
import { type ReliabilitySeries, reliabilitySeries } from '../domain/reliability.ts';
import { openDatabase } from '../infra/postgres.ts';
import { logFile, portOpen, recordedPid, stopService } from '../infra/processes.ts';
import { temporalClient, temporalEndpoint } from '../infra/temporal.ts';
import { type AuditEntry, type AuditFilter, listAudit } from '../services/catalog/audit.ts';
import { embedderFor } from '../services/catalog/embeddings.ts';
import { createRegistry, type Registry } from '../services/catalog/registry.ts';
import { activityMarks, invocationSeries } from '../services/catalog/series.ts';
import { toolsDir } from '../services/config.ts';
import { type ApprovalRow, pendingApprovals } from '../services/control/approvals.ts';
import { forgeBudgetToday } from '../services/control/budget.ts';
import { createKillSwitch, type KillSwitchState } from '../services/control/kill-switch.ts';
import type { Sql } from '../services/db.ts';
import { log as rootLog } from '../services/log.ts';
import { type CandidateRow, createEvolveRuns } from '../services/runs/evolve-runs.ts';
import { type ApprovalAnswer, decideApproval } from './approvals.ts';
import type { Session } from './context.ts';
import { freeze, thaw } from './control.ts';
import { workflowUiUrl } from './cycles.ts';
import { awaitsConsent, type ConsentInput, decideCandidate } from './evolve.ts';
import { ensureListeningService } from './listening-service.ts';
import { ensureMcpToken, type McpToken, mcpToken } from './mcp-calls.ts';
import { type CycleSummary, cyclesMark, type ListedCycleKind, listCycles } from './recent-cycles.ts';
import { reconcileQuietly } from './reconcile.ts';

/**
 * The use cases behind the web dashboard (web/): what a person supervising Forge looks at — the
 * catalog with each tool's versions, diffs and reliability over time, what waits for them, the
 * kill switch, the audit log and Forge's recent cycles — and the levers they pull from it, which
 * are the CLI's own (decideApproval, freeze, thaw), so the page cannot decide anything the CLI
 * would refuse.
 * The server is long-lived: it holds one Temporal client and one small database pool, opened on
 * first use and reopened after a failure (Forge may come up after it).
 */

export const dashboardLog = rootLog.child({ component: 'dashboard' });

/** How often the page's reads compare open ledger rows with Temporal. */
const RECONCILE_EVERY_MS = 10_000;

const _root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------------------------------------
// Where it answers, and its token

/**
 * The dashboard takes the MCP endpoint's bearer token (FORGE_MCP_TOKEN, else $FORGE_HOME/mcp-token):
 * one secret for both of Forge's loopback surfaces that can act, kept where the person already
 * knows to look. The page reads it from the address's fragment (#token=…), which a browser never
 * sends to a server, so it does not land in a log or a Referer.
 */
export const dashboardToken: (cfg: ForgeConfig) => McpToken | undefined = mcpToken;
export const ensureDashboardToken: (cfg: ForgeConfig) => McpToken & { created: boolean } = ensureMcpToken;

export function dashboardUrl(cfg: Pick<ForgeConfig, 'FORGE_DASHBOARD_HOST' | 'FORGE_DASHBOARD_PORT'>, token?: string): string {
  const wildcard = ['0.0.0.0', '::'].includes(cfg.FORGE_DASHBOARD_HOST);
  const host = wildcard ? '127.0.0.1' : cfg.FORGE_DASHBOARD_HOST.includes(':') ? `[${cfg.FORGE_DASHBOARD_HOST}]` : cfg.FORGE_DASHBOARD_HOST;
  return `http://${host}:${cfg.FORGE_DASHBOARD_PORT}/${token ? `#token=${encodeURIComponent(token)}` : ''}`;
}

const probeHost = (cfg: ForgeConfig) => (['0.0.0.0', '::'].includes(cfg.FORGE_DASHBOARD_HOST) ? '127.0.0.1' : cfg.FORGE_DASHBOARD_HOST);

/**
 * The dashboard as a background process with a pid file (forge up), like the MCP endpoint: a pid
 * file naming a dead process is a crashed server, started again; a port held by another process
 * is a clear error rather than a server that cannot bind.
 */
export async function ensureDashboardServer(cfg: ForgeConfig): Promise<{ pid: number; url: string; crashedPid?: number }> {
  const token = ensureDashboardToken(cfg);
  const url = dashboardUrl(cfg, token.token);
  const started = await ensureListeningService(cfg, {
    name: 'dashboard',
    what: 'the dashboard',
    args: ['dashboard'],
    port: cfg.FORGE_DASHBOARD_PORT,
    probeHost: probeHost(cfg),
    host: cfg.FORGE_DASHBOARD_HOST,
    portTaken: { code: 'DASHBOARD_PORT_TAKEN', fix: 'set FORGE_DASHBOARD_PORT to a free port (or FORGE_DASHBOARD=0 to go without it)' },
  });
  return { ...started, url };
}

/** forge doctor's line: its process (a pid file naming a dead one is a crash) and its port. */
export async function checkDashboard(cfg: ForgeConfig): Promise<{ component: string; ok: boolean; detail: string; fix?: string }> {
  const recorded = recordedPid(cfg.home, 'dashboard');
  const url = dashboardUrl(cfg);
  const fix = `forge up (restarts it; its log: ${logFile(cfg.home, 'dashboard')})`;
  if (recorded && !recorded.running)
    return { component: 'dashboard', ok: false, detail: `down: the dashboard Forge started (pid ${recorded.pid}) is not running`, fix };
  if (!(await portOpen(cfg.FORGE_DASHBOARD_PORT, probeHost(cfg))))
    return { component: 'dashboard', ok: false, detail: `nothing answers at ${url}`, fix: 'forge up (or: forge dashboard)' };
  return { component: 'dashboard', ok: true, detail: `${url}${recorded ? ` (pid ${recorded.pid})` : ''}` };
}

/** forge down: stops the dashboard forge up started; true when one ran. */
export function stopDashboardServer(cfg: ForgeConfig): Promise<boolean> {
  return stopService(cfg.home, 'dashboard', 5_000);
}

// ---------------------------------------------------------------------------------------------
// What the page reads

export interface PendingItem {
  id: string;
  /** write, destructive, confirm, budget, escalation, question, …; consent for an evolution candidate */
  kind: string;
  tool: string | null;
  summary: string;
  workflowId: string;
  uiUrl: string | null;
  createdAt: string;
  /** what the page offers: approve/reject, or an answer in words (a question) */
  answers: 'decision' | 'text';
  /** a consent: the image digest the person consents to (sent back with the decision) and the harness patch's diff */
  digest?: string;
  diff?: string;
}

export interface DashboardTool {
  name: string;
  currentVersion: number | null;
  status: string;
  description: string;
  sideEffect: 'read' | 'write';
  destructive: boolean;
  pinned: boolean;
  versions: number;
  level: string;
  invocations: number;
  successRate: number;
  avgLatencyMs: number | null;
  updatedAt: string;
}

export interface Overview {
  user: string;
  killSwitch: KillSwitchState;
  pending: PendingItem[];
  budget: { limit: number; usedToday: number; remaining: number };
  tools: DashboardTool[];
  temporalUi: string | null;
}

export interface ToolView {
  tool: DashboardTool & { manifest: unknown; dir: string | null };
  history: { version: number; status: string; createdBy: string; createdAt: string; current: boolean; onDisk: string; diff: string }[];
  reliability: ReliabilitySeries;
}

/** The sections of the page, each with a mark that changes when what it shows does. */
export type Section = 'killSwitch' | 'pending' | 'catalog' | 'audit' | 'cycles';
export type Marks = Record<Section, string>;

export interface DashboardBackend {
  readonly cfg: ForgeConfig;
  overview(): Promise<Overview>;
  tool(name: string): Promise<ToolView>;
  audit(filter: AuditFilter): Promise<AuditEntry[]>;
  /** Forge's recent cycles from Temporal's visibility store, newest first */
  cycles(filter: { kind?: ListedCycleKind; limit?: number }): Promise<CycleSummary[]>;
  marks(): Promise<Marks>;
  decide(answer: Omit<ApprovalAnswer, 'by'>, by: string): ReturnType<typeof decideApproval>;
  /** a person's consent to a verified evolve candidate, with the digest they were shown (forge evolve approve|reject) */
  consent(input: Omit<ConsentInput, 'by'>, by: string): ReturnType<typeof decideCandidate>;
  freeze(by: string, reason?: string): Promise<{ killedSandboxes: number }>;
  thaw(by: string): Promise<void>;
  close(): Promise<void>;
}

const consentItem = (cfg: ForgeConfig, c: CandidateRow): PendingItem => ({
  id: c.id,
  kind: 'consent',
  tool: null,
  summary: `a harness patch for ${c.evidence_ids.length} ${c.failure_type} failure(s) (batch ${c.batch_key}), verified by replay${c.rationale ? `: ${c.rationale}` : ''}${c.image_digest ? ` — image ${c.image_digest}` : ''}`,
  workflowId: c.workflow_id,
  uiUrl: workflowUiUrl(cfg, c.workflow_id),
  createdAt: c.updated_at.toISOString(),
  answers: 'decision',
  ...(c.image_digest ? { digest: c.image_digest } : {}),
  ...(c.diff ? { diff: c.diff } : {}),
});

const pendingItem = (cfg: ForgeConfig, row: ApprovalRow): PendingItem => ({
  id: row.id,
  kind: row.kind,
  tool: row.tool,
  summary: row.summary,
  workflowId: row.workflow_id,
  uiUrl: workflowUiUrl(cfg, row.workflow_id),
  createdAt: row.created_at.toISOString(),
  answers: row.kind === 'question' ? 'text' : 'decision',
});

/**
 * A Temporal session that connects again after a failed connect: the server is long-lived and
 * Temporal may come up after it (a session for one CLI command keeps its first failure).
 */
function reconnectingSession(cfg: ForgeConfig): Session {
  let client: ReturnType<Session['temporal']> | undefined;
  return {
    cfg,
    temporal: () =>
      (client ??= temporalClient(cfg).catch((err) => {
        client = undefined;
        throw err;
      })),
    async close() {
      const connected = await client?.catch(() => undefined);
      await connected?.connection.close();
    },
  };
}

export function openDashboardBackend(cfg: ForgeConfig, opts: { user: string }): DashboardBackend {
  const session: Session = reconnectingSession(cfg);
  let pool: Promise<Sql> | undefined;
  let registry: Registry | undefined;

  const db = (): Promise<Sql> => {
    pool ??= openDatabase(cfg, { max: 3 }).catch((err) => {
      pool = undefined; // the next request tries again: Forge may be coming up
      throw err;
    });
    return pool;
  };
  const catalog = async (): Promise<Registry> => {
    const sql = await db();
    registry ??= createRegistry({ sql, root: toolsDir(cfg), embedder: embedderFor(cfg), logger: dashboardLog });
    return registry;
  };

  async function tools(): Promise<DashboardTool[]> {
    const registry = await catalog();
    const listed = await registry.list();
    return Promise.all(
      listed.map(async (t) => {
        const s = await registry.stats(t.name);
        return {
          name: t.name,
          currentVersion: t.currentVersion,
          status: t.status,
          description: t.description,
          sideEffect: t.sideEffect,
          destructive: t.destructive,
          pinned: t.pinned,
          versions: t.versions,
          level: s.level,
          invocations: s.invocations,
          successRate: s.successRate,
          avgLatencyMs: s.avgLatencyMs,
          updatedAt: t.updatedAt,
        };
      }),
    );
  }

  /**
   * The ledgers compared with Temporal (app/reconcile.ts) before the page reads them, at most every
   * RECONCILE_EVERY_MS: marks() runs once a second while a page listens, and a forge terminated from
   * outside must stop counting against the budget shown without a describe per open row per second.
   */
  let reconciledAt = 0;
  async function reconciled(): Promise<void> {
    if (Date.now() - reconciledAt < RECONCILE_EVERY_MS) return;
    reconciledAt = Date.now();
    await reconcileQuietly(session, { sql: await db() });
  }

  async function pending(): Promise<PendingItem[]> {
    const sql = await db();
    const [approvals, candidates] = await Promise.all([pendingApprovals(sql), createEvolveRuns(sql).listCandidates(50)]);
    return [...approvals.map((r) => pendingItem(cfg, r)), ...candidates.filter(awaitsConsent).map((c) => consentItem(cfg, c))];
  }

  return {
    cfg,
    async overview() {
      const sql = await db();
      await reconciled();
      const [killSwitch, items, budget, listed] = await Promise.all([
        createKillSwitch(sql, 0).state(),
        pending(),
        forgeBudgetToday(sql, cfg.FORGE_DAILY_FORGE_BUDGET),
        tools(),
      ]);
      return {
        user: opts.user,
        killSwitch,
        pending: items,
        budget: { limit: budget.limit, usedToday: budget.usedToday, remaining: budget.remaining },
        tools: listed,
        temporalUi: temporalEndpoint(cfg).uiUrl ?? null,
      };
    },

    async tool(name) {
      const registry = await catalog();
      const [details, history, calls] = await Promise.all([
        registry.show(name),
        registry.history(name),
        invocationSeries(await db(), name),
      ]);
      return {
        tool: {
          name: details.name,
          currentVersion: details.currentVersion,
          status: details.status,
          description: details.description,
          sideEffect: details.sideEffect,
          destructive: details.destructive,
          pinned: details.pinned,
          versions: details.versions,
          level: details.stats.level,
          invocations: details.stats.invocations,
          successRate: details.stats.successRate,
          avgLatencyMs: details.stats.avgLatencyMs,
          updatedAt: details.updatedAt,
          manifest: details.manifest,
          dir: details.dir,
        },
        // Newest first, as a person reads a changelog.
        history: history
          .map((h) => ({
            version: h.version,
            status: h.status,
            createdBy: h.createdBy,
            createdAt: h.createdAt,
            current: h.current,
            onDisk: h.onDisk,
            diff: h.diff,
          }))
          .reverse(),
        reliability: reliabilitySeries(calls),
      };
    },

    async audit(filter) {
      return listAudit(await db(), filter);
    },

    cycles: (filter) => listCycles(session, filter),

    async marks() {
      const sql = await db();
      await reconciled();
      const [killSwitch, items, candidates, budget, activity, cycles] = await Promise.all([
        createKillSwitch(sql, 0).state(),
        pendingApprovals(sql),
        createEvolveRuns(sql).listCandidates(50),
        forgeBudgetToday(sql, cfg.FORGE_DAILY_FORGE_BUDGET),
        activityMarks(sql),
        // Temporal down leaves the other sections live; the panel refetches (and shows why) when it comes back.
        cyclesMark(session).catch((err: Error) => `unavailable: ${err.message}`),
      ]);
      const consents = candidates.filter(awaitsConsent).map((c) => `${c.id}@${c.image_digest}`);
      return {
        killSwitch: JSON.stringify(killSwitch),
        pending: `${items.map((r) => r.id).join(',')}|${consents.join(',')}|${budget.usedToday}/${budget.limit}`,
        catalog: activity.catalog,
        audit: String(activity.audit),
        cycles,
      };
    },

    decide: (answer, by) => decideApproval(session, { ...answer, by }),
    consent: (input, by) => decideCandidate(session, { ...input, by }),
    freeze: (by, reason) => freeze(cfg, by, reason),
    thaw: (by) => thaw(cfg, by),

    async close() {
      await session.close();
      const sql = await pool?.catch(() => undefined);
      await sql?.end({ timeout: 2 });
    },
  };
}

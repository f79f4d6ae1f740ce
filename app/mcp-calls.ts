import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { ForgeConfig } from '../domain/config.ts';
import { type DirectCallResult, type DirectCallSource, directCallInputSchema } from '../domain/direct-call.ts';
import { ForgeError, InvalidInputError } from '../domain/errors.ts';
import type { ForgeOutcome } from '../domain/forge.ts';
import type { TaskInput, TaskResult } from '../domain/task.ts';
import { workflowTypeInWords } from '../domain/words.ts';
import { openDatabase } from '../infra/postgres.ts';
import { sleep } from '../infra/processes.ts';
import { embedderFor } from '../services/catalog/embeddings.ts';
import { type ActiveTool, activeTools, activeToolsFingerprint } from '../services/catalog/live.ts';
import { createRegistry, type Registry } from '../services/catalog/registry.ts';
import { createToolCalls } from '../services/catalog/tool-calls.ts';
import { toolsDir } from '../services/config.ts';
import { findApproval } from '../services/control/approvals.ts';
import type { Sql } from '../services/db.ts';
import { log as rootLog } from '../services/log.ts';
import { forgeProgressQuery, progressQuery, toolCallProgressQuery } from '../workflows/definitions.ts';
import { openSession, type Session } from './context.ts';
import { type StartedCycle, startCycle, workflowUiUrl } from './cycles.ts';
import { settled } from './follow.ts';
import { startForge } from './forge.ts';
import { outsideEndOf, reconcileQuietly } from './reconcile.ts';
import { startTask } from './tasks.ts';

/**
 * The use cases behind Forge's MCP server (mcp/): the catalog as MCP tools, a direct call of one
 * (a tool call cycle: the same gate, approval, sandbox, metering and audit as a task's call),
 * discovery with its scores, a forge, a whole task, and a bounded wait on any of those cycles.
 * The server is a long-lived process, so it holds one Temporal client and one small database
 * pool, opened on first use and reopened after a failure (Forge may come up after the server).
 */

export const mcpLog = rootLog.child({ component: 'mcp' });

// ---------------------------------------------------------------------------------------------
// The bearer token of the HTTP endpoint

/** Where forge up keeps the token it generated, when FORGE_MCP_TOKEN is unset (mode 0600). */
export function mcpTokenFile(cfg: Pick<ForgeConfig, 'home'>): string {
  return path.join(cfg.home, 'mcp-token');
}

export interface McpToken {
  token: string;
  /** where it came from, for the line a person reads: FORGE_MCP_TOKEN or the file's path */
  from: string;
}

/** The token an HTTP client must send: FORGE_MCP_TOKEN, else the one forge up wrote; undefined when neither exists. */
export function mcpToken(cfg: ForgeConfig): McpToken | undefined {
  if (cfg.FORGE_MCP_TOKEN) return { token: cfg.FORGE_MCP_TOKEN, from: 'FORGE_MCP_TOKEN' };
  const file = mcpTokenFile(cfg);
  const token = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : '';
  return token.length >= 16 ? { token, from: file } : undefined;
}

/** The token, generated once into FORGE_HOME when there is none yet (forge up). */
export function ensureMcpToken(cfg: ForgeConfig): McpToken & { created: boolean } {
  const existing = mcpToken(cfg);
  if (existing) return { ...existing, created: false };
  const file = mcpTokenFile(cfg);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const token = randomBytes(32).toString('hex');
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'w' });
  fs.chmodSync(file, 0o600);
  return { token, from: file, created: true };
}

/** The token, or an error that says how to get one (the HTTP endpoint never runs without it). */
export function requireMcpToken(cfg: ForgeConfig): McpToken {
  const found = mcpToken(cfg);
  if (found) return found;
  throw new ForgeError(
    'the MCP HTTP endpoint needs a bearer token, and none is set',
    'MCP_TOKEN_MISSING',
    `export FORGE_MCP_TOKEN=$(openssl rand -hex 32), or run forge up once: it writes one to ${mcpTokenFile(cfg)}`,
  );
}

/** The endpoint's address as a client should use it. */
export function mcpHttpUrl(cfg: Pick<ForgeConfig, 'FORGE_MCP_HOST' | 'FORGE_MCP_PORT'>): string {
  const host = cfg.FORGE_MCP_HOST.includes(':') ? `[${cfg.FORGE_MCP_HOST}]` : cfg.FORGE_MCP_HOST;
  return `http://${host}:${cfg.FORGE_MCP_PORT}/mcp`;
}

// ---------------------------------------------------------------------------------------------
// What a client sees and gets back

/** A catalog tool as an MCP tool: its current version, manifest and JSON Schemas. */
export interface CatalogTool {
  name: string;
  version: number;
  description: string;
  inputSchema: Record<string, unknown>;
  outputSchema: Record<string, unknown>;
  sideEffect: 'read' | 'write';
  destructive: boolean;
  /** the hosts it may reach (none: it works offline) */
  network: string[];
}

const catalogTool = (t: ActiveTool): CatalogTool => ({
  name: t.name,
  version: t.version,
  description: t.manifest.description,
  inputSchema: t.manifest.inputSchema,
  outputSchema: t.manifest.outputSchema,
  sideEffect: t.manifest.sideEffect,
  destructive: t.manifest.destructive,
  network: t.manifest.permissions.network,
});

export type WatchedKind = 'call' | 'forge' | 'task';

interface CycleBase {
  workflowId: string;
  uiUrl: string | null;
}

/** Where a cycle stands after a bounded wait: its end, or why it is still open. */
export type CycleView = CycleBase &
  (
    | { state: 'done'; kind: 'call'; result: DirectCallResult }
    | { state: 'done'; kind: 'forge'; result: ForgeOutcome; tool?: CatalogTool }
    | { state: 'done'; kind: 'task'; result: TaskResult }
    | { state: 'failed'; kind: WatchedKind; error: string }
    | {
        state: 'awaiting-approval';
        kind: WatchedKind;
        phase: string;
        approval: { id: string; kind: string; summary: string };
      }
    | { state: 'frozen'; kind: WatchedKind; phase: string }
    | { state: 'running'; kind: WatchedKind; phase: string }
  );

export interface WaitOptions {
  /** how long to wait for the end before answering with where the cycle stands */
  waitMs: number;
  /** the client gave up (the request was cancelled): stop waiting; the cycle goes on */
  signal?: AbortSignal;
  /** each phase the cycle passes while it is waited for */
  onProgress?: (phase: string) => void;
}

export interface SearchAnswer {
  /** what discovery would do with this request: reuse the top tool, confirm it with a person, or forge a new one */
  decision: { action: string; tool?: string; reason: string };
  /**
   * `invocations`, `successes` and `level` are the current version's (`version`), as the trust
   * ladder and `forge tools ls` read them: a rewrite starts its own record. (Discovery's ranking
   * weighs every version's usage; that is how it orders, not what a tool has earned.)
   */
  hits: {
    name: string;
    version: number;
    description: string;
    status: string;
    sideEffect: 'read' | 'write';
    similarity: number;
    score: number;
    level: string;
    invocations: number;
    successes: number;
  }[];
}

const workflowKinds: Record<string, WatchedKind> = { toolCallWorkflow: 'call', forgeWorkflow: 'forge', taskWorkflow: 'task' };

/**
 * A call of a name the catalog does not offer (never registered, archived, or quarantined): refused
 * before any cycle starts, so a client's typo, or a tool taken out of the list, leaves no workflow,
 * invocation or audit entry behind. A quarantined tool is there but not run until it is repaired:
 * the refusal says so, and what a person can do about it.
 */
export class ToolNotOfferedError extends ForgeError {
  constructor(name: string, status: 'unknown' | 'archived' | 'quarantined') {
    const search = 'search_tools finds the tool for a need (tools/list lists them all); forge_tool writes one when none fits';
    super(
      status === 'quarantined'
        ? `${name} is quarantined in Forge's catalog: it failed too many of its recent calls (success rate under 70 %) and is not run until it is repaired`
        : status === 'archived'
          ? `${name} is archived in Forge's catalog: it is no longer offered or run`
          : `no tool named ${JSON.stringify(name)} in Forge's catalog`,
      status === 'quarantined' ? 'TOOL_QUARANTINED' : 'TOOL_NOT_FOUND',
      status === 'quarantined'
        ? `the improve cycle a quarantine starts (improve-${name}) repairs it, and a promoted repair returns it to the list; a person can start one with forge improve ${name}, or release it at once with forge tools rollback ${name} (back to its previous verified version); meanwhile ${search}`
        : search,
      { tool: name, status },
    );
  }
}

export interface McpBackend {
  readonly cfg: ForgeConfig;
  /** changes exactly when the list of active tools does (polled to send tools/list_changed) */
  fingerprint(): Promise<string>;
  tools(): Promise<CatalogTool[]>;
  search(query: string, limit: number): Promise<SearchAnswer>;
  /** starts the tool call cycle for one catalog tool and waits (bounded) for its result */
  callTool(name: string, args: unknown, source: DirectCallSource, opts: WaitOptions): Promise<CycleView>;
  forge(ask: { need: string; name?: string }, opts: WaitOptions): Promise<CycleView>;
  runTask(ask: { task: string; sessionId?: string; limits?: TaskInput['limits'] }, opts: WaitOptions): Promise<CycleView>;
  /** a call, forge or task started earlier, by its workflow id */
  result(workflowId: string, opts: WaitOptions): Promise<CycleView>;
  close(): Promise<void>;
}

/** The backend of one MCP server process. */
export function openMcpBackend(cfg: ForgeConfig): McpBackend {
  const session: Session = openSession(cfg);
  let pool: Promise<Sql> | undefined;
  let registry: Registry | undefined;

  const db = (): Promise<Sql> => {
    pool ??= openDatabase(cfg, { max: 2 }).catch((err) => {
      pool = undefined; // the next request tries again: Forge may be coming up
      throw err;
    });
    return pool;
  };
  const catalog = async (): Promise<Registry> => {
    const sql = await db();
    registry ??= createRegistry({
      sql,
      root: toolsDir(cfg),
      embedder: embedderFor(cfg),
      logger: mcpLog,
    });
    return registry;
  };

  async function handleOf(workflowId: string): Promise<WorkflowHandle> {
    return (await session.temporal()).workflow.getHandle(workflowId);
  }

  /**
   * Waits for a cycle's end, but never past opts.waitMs, and not at all once it waits for a
   * person or a thaw: a client cannot approve anything, and it must not hang on what a person
   * decides later. The workflow's status is polled (not its result, whose long poll would outlive
   * the wait); the progress query says what it waits for.
   */
  async function watch(kind: WatchedKind, workflowId: string, opts: WaitOptions, started?: StartedCycle): Promise<CycleView> {
    const handle = await handleOf(workflowId);
    const base = { workflowId, uiUrl: started?.uiUrl ?? workflowUiUrl(cfg, workflowId) };
    const deadline = Date.now() + opts.waitMs;
    let phase = 'starting';
    for (;;) {
      const status = (await handle.describe()).status.name;
      if (status !== 'RUNNING') {
        const end = await settled(handle.result());
        if (!end.ok) {
          // Ended from outside (terminated, timed out): its ledger row says so from now on, and the client reads why.
          await reconcileQuietly(session, { workflowIds: [workflowId], sql: await db() });
          const outside = await outsideEndOf(session, workflowId).catch(() => undefined);
          return { ...base, state: 'failed', kind, error: outside && outside.status !== 'failed' ? outside.reason : end.error };
        }
        if (kind === 'forge') {
          const result = end.result as ForgeOutcome;
          const tool = result.status === 'registered' ? (await listCatalog()).find((t) => t.name === result.name) : undefined;
          return { ...base, state: 'done', kind, result, ...(tool ? { tool } : {}) };
        }
        if (kind === 'call') return { ...base, state: 'done', kind, result: end.result as DirectCallResult };
        return { ...base, state: 'done', kind, result: end.result as TaskResult };
      }
      const progress = await queryProgress(kind, handle);
      if (progress) {
        if (progress.phase !== phase) opts.onProgress?.(progress.phase);
        phase = progress.phase;
        // The workflow waits before its approval row is written: a moment later the row says what it waits for.
        const row = progress.pendingApproval ? await findApproval(await db(), progress.pendingApproval) : undefined;
        if (progress.pendingApproval && (row || Date.now() >= deadline)) {
          return {
            ...base,
            state: 'awaiting-approval',
            kind,
            phase,
            approval: { id: progress.pendingApproval, kind: row?.kind ?? 'approval', summary: row?.summary ?? '' },
          };
        }
        if (progress.frozen) return { ...base, state: 'frozen', kind, phase };
      }
      if (Date.now() >= deadline || opts.signal?.aborted) return { ...base, state: 'running', kind, phase };
      await sleep(250);
    }
  }

  async function queryProgress(
    kind: WatchedKind,
    handle: WorkflowHandle,
  ): Promise<{ phase: string; pendingApproval?: string; frozen?: boolean } | undefined> {
    // Unanswered until a worker has picked the workflow up.
    const ask = (): Promise<{ phase: string; pendingApproval?: string; frozen?: boolean }> =>
      kind === 'call'
        ? handle.query(toolCallProgressQuery)
        : kind === 'forge'
          ? handle.query(forgeProgressQuery)
          : handle.query(progressQuery);
    return ask().catch(() => undefined);
  }

  async function listCatalog(): Promise<CatalogTool[]> {
    return (await activeTools(await db())).map(catalogTool);
  }

  return {
    cfg,
    fingerprint: async () => activeToolsFingerprint(await db()),
    tools: listCatalog,

    async search(query, limit) {
      const registry = await catalog();
      const [hits, discovery] = await Promise.all([
        registry.search(query, { limit }),
        createToolCalls({ registry }).discoverTool({ query }),
      ]);
      const d = discovery.decision;
      // The search's usage counts cover every version (they rank); a person reads what the current one earned.
      const earned = await Promise.all(hits.map((h) => registry.stats(h.name)));
      return {
        decision: { action: d.action, ...(d.tool ? { tool: d.tool } : {}), reason: d.reason },
        hits: hits.map((h, i) => ({
          name: h.name,
          version: h.version,
          description: h.description,
          status: h.status,
          sideEffect: h.sideEffect,
          similarity: h.similarity,
          score: h.score,
          level: earned[i]!.level,
          invocations: earned[i]!.invocations,
          successes: earned[i]!.successes,
        })),
      };
    },

    async callTool(name, args, source, opts) {
      const current = await (await catalog()).getCurrent(name);
      if (!current) throw new ToolNotOfferedError(name, 'unknown');
      if (current.status !== 'active') throw new ToolNotOfferedError(name, current.status);
      const parsed = directCallInputSchema.safeParse({ tool: name, input: args ?? {}, source, sandboxQueue: cfg.FORGE_SANDBOX_QUEUE });
      if (!parsed.success)
        throw new InvalidInputError('tool call', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      const started = await startCycle(session, 'call', [parsed.data], { qualifier: name, toolName: name });
      return watch('call', started.workflowId, opts, started);
    },

    async forge(ask, opts) {
      const started = await startForge(session, ask);
      return watch('forge', started.workflowId, opts, started);
    },

    async runTask(ask, opts) {
      const started = await startTask(session, ask.task, ask.limits, ask.sessionId);
      return watch('task', started.workflowId, opts, started);
    },

    async result(workflowId, opts) {
      const handle = await handleOf(workflowId);
      const type = await handle.describe().then(
        (d) => d.type,
        () => undefined,
      );
      const kind = type ? workflowKinds[type] : undefined;
      if (!type)
        throw new ForgeError(`no workflow ${workflowId}`, 'CYCLE_NOT_FOUND', 'use the id a call, forge_tool or run_task answered with');
      if (!kind)
        throw new ForgeError(
          `${workflowId} is ${workflowTypeInWords(type)}, not a tool call, forge or task`,
          'CYCLE_NOT_WATCHABLE',
          'use the id a call, forge_tool or run_task answered with',
        );
      return watch(kind, workflowId, opts);
    },

    async close() {
      await session.close();
      const sql = await pool?.catch(() => undefined);
      await sql?.end({ timeout: 2 });
    },
  };
}

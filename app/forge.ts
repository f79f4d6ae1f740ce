import path from 'node:path';
import { type QueryDefinition, WorkflowNotFoundError } from '@temporalio/client';
import { InvalidInputError } from '../domain/errors.ts';
import {
  type ForgeAttempt,
  ForgeNotFoundError,
  type ForgeOutcome,
  type ForgeRunStatus,
  forgeRequestSchema,
  forgeRunStatusSchema,
} from '../domain/forge.ts';
import { type SkippedStage, skippedStages, skippedStagesInSummary, type VerifyReport } from '../domain/verification.ts';
import { sleep } from '../infra/processes.ts';
import { toolsDir } from '../services/config.ts';
import { findApproval } from '../services/control/approvals.ts';
import { forgeBudgetFor } from '../services/control/budget.ts';
import { type ForgeLedgerRow, findForgeRow, recentForgeRows } from '../services/runs/forge-runs.ts';
import { forgeProgressQuery } from '../workflows/definitions.ts';
import type { Session } from './context.ts';
import { cycleToFollow, inputText, progressWithin, unbegunCycle } from './cycle-view.ts';
import { cycleHandle, type StartedCycle, startCycle, workflowUiUrl } from './cycles.ts';
import { withDb } from './db.ts';
import { type CycleEnd, followCycle, settled } from './follow.ts';
import { endedFromOutside, reconcileQuietly } from './reconcile.ts';
import { cycleMoved, type StallHooks, stallWatch } from './worker-watch.ts';

/** What a person asks to be forged: the need in words, optionally a name and API documentation. */
export interface ForgeAsk {
  need: string;
  name?: string;
  apiDocs?: string;
  /** an OpenAPI document, already parsed from JSON */
  openApi?: unknown;
}

/** What the forge workflow's progress query answers (its phases, attempts, and what waits for a person). */
export type ForgeProgressAnswer = typeof forgeProgressQuery extends QueryDefinition<infer P> ? P : never;

/** Starts a forge workflow (validated here, and again in the workflow). */
export async function startForge(session: Session, ask: ForgeAsk): Promise<StartedCycle> {
  const parsed = forgeRequestSchema.safeParse({ ...ask, sandboxQueue: session.cfg.FORGE_SANDBOX_QUEUE });
  if (!parsed.success) {
    throw new InvalidInputError('forge request', parsed.error.issues.map((i) => `${i.path.join('.') || 'need'}: ${i.message}`).join('; '));
  }
  return startCycle(session, 'forge', [parsed.data]);
}

/** A forge just started that waits for a person before anything is forged: today's budget is spent. */
export interface BudgetWait {
  usedToday: number;
  limit: number;
  /** the approval that decides it, once the forge asked (absent: no worker had begun the forge yet) */
  approvalId?: string;
}

/** How long `forge forge` without --wait waits for a forge past the budget to ask its approval. */
const BUDGET_ASK_WAIT_MS = 10_000;

/**
 * Whether a forge just started will wait for a person before it forges anything: today's budget is
 * spent (and its name is no tool the catalog holds, which asks nobody), so its first step asks for
 * an approval. Only then is that approval waited for, within a bound, until its row is written, so
 * the id printed can be decided at once; a forge no worker has begun yet has none to name.
 */
export function budgetWaitOf(session: Session, started: StartedCycle, name?: string): Promise<BudgetWait | undefined> {
  // The forge is started either way: a budget that cannot be read now says nothing (forge doctor says what is down).
  return askedForBudget(session, started, name).catch(() => undefined);
}

async function askedForBudget(session: Session, started: StartedCycle, name?: string): Promise<BudgetWait | undefined> {
  const { cfg } = session;
  const budget = await withDb(cfg, (sql) => forgeBudgetFor(sql, started.workflowId, cfg.FORGE_DAILY_FORGE_BUDGET, name));
  if (budget.remaining > 0 || budget.nameHeld) return undefined;
  const wait = { usedToday: budget.usedToday, limit: budget.limit };
  const handle = (await session.temporal()).workflow.getHandle(started.workflowId);
  for (const deadline = Date.now() + BUDGET_ASK_WAIT_MS; Date.now() < deadline; await sleep(200)) {
    const p = await progressWithin(handle, forgeProgressQuery);
    if (!p || p.phase === 'budget') continue;
    // Past its budget step without asking: a place came free meanwhile.
    if (p.phase !== 'awaiting-budget-approval' || !p.pendingApproval) return undefined;
    const approvalId = p.pendingApproval;
    if (await withDb(cfg, (sql) => findApproval(sql, approvalId))) return { ...wait, approvalId };
  }
  return wait;
}

/**
 * What a registered forge's verification did not judge, for a tool that calls the network: its
 * live stage, skipped offline or without the API's credentials (a tool with no network has no
 * real call to judge, and nothing is said). Read from the forge's report, else (a forge Temporal no
 * longer keeps) from its last verification's summary. `folder`: the version `forge sandbox verify`
 * judges again once a real call can be made.
 */
export async function unjudgedStages(
  session: Session,
  outcome: ReportedForgeOutcome,
  attempts: ForgeAttempt[] = [],
): Promise<{ stages: SkippedStage[]; folder: string } | undefined> {
  if (outcome.status !== 'registered') return undefined;
  const last = attempts.at(-1);
  const stages = outcome.report ? skippedStages(outcome.report) : last ? skippedStagesInSummary(last.summary) : [];
  if (!stages.length) return undefined;
  // The tool's current manifest says whether it reaches the network; when it cannot be read, say what was skipped anyway.
  // Imported here: the catalog (search, registry) is only needed for a forge that skipped a stage.
  const { showTool } = await import('./catalog.ts');
  const network = await showTool(session.cfg, outcome.name).then(
    (t) => t.manifest?.permissions.network.length ?? 0,
    () => 1,
  );
  if (!network) return undefined;
  return { stages, folder: path.join(toolsDir(session.cfg), outcome.name, `v${outcome.version}`) };
}

/** What a surface following a forge is told: each progress answer, and (stalled) a queue nobody serves or a model nobody answers at. */
export interface ForgeFollowHooks extends StallHooks {
  onProgress?: (progress: ForgeProgressAnswer) => void;
}

/** Follows a started forge to its outcome (registered, or not and why), reporting its progress and what holds it on the way. */
export async function followForge(session: Session, started: StartedCycle, hooks: ForgeFollowHooks = {}): Promise<CycleEnd<ForgeOutcome>> {
  const handle = await cycleHandle(session, 'forge', started);
  const watch = stallWatch<ForgeProgressAnswer>(session, started, hooks, cycleMoved);
  const end = await followCycle<ForgeOutcome, ForgeProgressAnswer>(handle, forgeProgressQuery, {
    onProgress: hooks.onProgress,
    ...watch,
  });
  return end.ok ? end : endedFromOutside(session, { workflowId: started.workflowId }, end);
}

/** A forge as a person reads it, whether it ended or not: its ledger row, and while it runs, where it is. */
export interface ForgeView {
  workflowId: string;
  /** what was asked, in words */
  need: string;
  status: ForgeRunStatus;
  uiUrl: string | null;
  /** the tool's name, once its spec named it (or the name asked for) */
  name?: string;
  /** the version it registered, or the version a name the catalog held came to */
  version?: number;
  /** why it failed or ended from outside; for a name the catalog held, what it came to */
  reason?: string;
  /** its verifications so far, each passed or not, with the summary a repair read */
  attempts: ForgeAttempt[];
  /** while it runs: its phase, verifications and what it waits for (absent until a worker answers) */
  progress?: ForgeProgressAnswer;
  createdAt?: string;
  updatedAt?: string;
}

/** The statuses of a forge that has not ended. */
const OPEN: ReadonlySet<ForgeRunStatus> = new Set<ForgeRunStatus>(['running', 'awaiting-budget-approval']);

/** Whether the forge is still going (running, or waiting for a person to approve going past the budget). */
export const forgeIsOpen = (view: Pick<ForgeView, 'status'>): boolean => OPEN.has(view.status);

function forgeView(session: Session, row: ForgeLedgerRow): ForgeView {
  return {
    workflowId: row.workflow_id,
    need: row.need,
    status: forgeRunStatusSchema.parse(row.status),
    uiUrl: workflowUiUrl(session.cfg, row.workflow_id),
    ...(row.name ? { name: row.name } : {}),
    ...(row.version !== null ? { version: row.version } : {}),
    ...(row.reason ? { reason: row.reason } : {}),
    attempts: row.attempts,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/**
 * One forge by its workflow id, as it stands: an ended one from the ledger (compared with Temporal
 * first, so one ended from outside reads so), a running one with its live progress, and one
 * started but not picked up by any worker yet as running with no progress.
 */
export async function showForge(session: Session, workflowId: string): Promise<ForgeView> {
  await reconcileQuietly(session, { workflowIds: [workflowId] });
  const row = await withDb(session.cfg, (sql) => findForgeRow(sql, workflowId));
  if (!row) return notStartedForge(session, workflowId);
  const view = forgeView(session, row);
  if (!forgeIsOpen(view)) return view;
  const progress = await progressWithin((await session.temporal()).workflow.getHandle(workflowId), forgeProgressQuery);
  return progress ? { ...view, progress } : view;
}

/** No ledger row: a forge Temporal has but no worker has begun (running, no progress), or no forge at all. */
async function notStartedForge(session: Session, workflowId: string): Promise<ForgeView> {
  const { input, outside } = await unbegunCycle(session, workflowId, {
    workflowType: 'forgeWorkflow',
    what: 'forge',
    listedBy: 'forge forges',
    notFound: () => new ForgeNotFoundError(workflowId),
  });
  return {
    workflowId,
    need: inputText(input, 'need') ?? '(its words are in its start event)',
    status: outside?.status ?? 'running',
    uiUrl: workflowUiUrl(session.cfg, workflowId),
    ...(outside ? { reason: outside.reason } : {}),
    attempts: [],
  };
}

/** Recent forges, newest first, each as it stands (compared with Temporal first); `total` counts them all. */
export async function listForges(session: Session, opts: { limit: number }): Promise<{ forges: ForgeView[]; total: number }> {
  if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > 1000)
    throw new InvalidInputError('limit', `expected a whole number from 1 to 1000, got ${opts.limit}`);
  await reconcileQuietly(session);
  const { rows, total } = await withDb(session.cfg, (sql) => recentForgeRows(sql, opts.limit));
  return { forges: rows.map((row) => forgeView(session, row)), total };
}

/** A forge to follow (forge forges show <id> --wait): what following needs, from its first run on. */
export const forgeToFollow = (session: Session, view: ForgeView): Promise<StartedCycle> =>
  cycleToFollow(session, view.workflowId, view.uiUrl);

/**
 * A forge's outcome as a surface reports it: the workflow's own, or, for a forge Temporal no
 * longer keeps, its ledger row's, which has no verification report.
 */
export type ReportedForgeOutcome = ForgeOutcome extends infer O
  ? O extends unknown
    ? Omit<O, 'report'> & { report?: VerifyReport }
    : never
  : never;

/**
 * How an ended forge ended, as following it would have said: its workflow's result, read from
 * Temporal's history (no worker needed, and with what the ledger does not keep: a model nobody
 * could reach), else, once Temporal no longer keeps it, its ledger row.
 */
export async function forgeEnding(session: Session, view: ForgeView): Promise<CycleEnd<ReportedForgeOutcome>> {
  const handle = (await session.temporal()).workflow.getHandle(view.workflowId);
  const known = await handle.describe().then(
    () => true,
    (err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    },
  );
  if (known) {
    const end = await settled<ForgeOutcome>(handle.result());
    return end.ok ? end : endedFromOutside(session, { workflowId: view.workflowId }, end);
  }
  return ledgerEnding(view);
}

/** What an ended forge's ledger row says it came to. */
export function ledgerEnding(view: ForgeView): CycleEnd<ReportedForgeOutcome> {
  const attempts = view.attempts.length;
  switch (view.status) {
    case 'registered':
    case 'unchanged':
    case 'new-version':
      return {
        ok: true,
        result: {
          status: 'registered',
          name: view.name ?? '(unnamed)',
          version: view.version ?? 0,
          attempts,
          // a name the catalog held: the ledger's reason is what it came to
          ...(view.status !== 'registered' && view.reason ? { note: view.reason } : {}),
        },
      };
    case 'failed':
      return {
        ok: true,
        result: {
          status: 'failed',
          ...(view.name ? { name: view.name } : {}),
          reason: view.reason ?? '(no reason recorded)',
          attempts: view.attempts,
        },
      };
    case 'terminated':
    case 'cancelled':
    case 'timed-out':
      return { ok: false, error: view.reason ?? `${view.status} (no reason recorded)`, ended: view.status };
    default:
      throw new Error(`ledgerEnding: ${view.workflowId} has not ended (${view.status})`);
  }
}

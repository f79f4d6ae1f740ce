import { z } from 'zod';
import { type ForgeAttempt, toolSpecSchema } from '../domain/forge.ts';
import { sessionIdSchema } from '../domain/session.ts';
import type { TaskResult } from '../domain/task.ts';
import { apiSpecSchema } from '../domain/tool.ts';
import type { Registry } from '../services/catalog/registry.ts';
import { createToolCalls } from '../services/catalog/tool-calls.ts';
import { createApprovalLedger } from '../services/control/approvals.ts';
import type { KillSwitch } from '../services/control/kill-switch.ts';
import type { Sql } from '../services/db.ts';
import { createForgeRuns } from '../services/runs/forge-runs.ts';
import { createSessionStore } from '../services/runs/sessions.ts';
import { createTaskStore } from '../services/runs/tasks.ts';
import { adapted, parseActivityInput } from './failures.ts';
import { guard } from './guard.ts';

const workflowId = z.string().min(1).max(1000);
// Built by workflow code from checked parts; the boundary checks their shape, not every field again.
const object = <T>() => z.custom<T>((v) => typeof v === 'object' && v !== null, 'expected an object');

const startTaskSchema = z.object({ workflowId, task: z.string() });
const recordStepSchema = z.object({ workflowId, step: z.string().min(1), output: z.unknown() });
const stepSchema = z.object({ step: z.string().min(1), output: z.unknown() });
/** step: the last turn's record, written with the result (one local activity instead of two) */
const completeTaskSchema = z.object({ workflowId, result: object<TaskResult>(), step: stepSchema.optional() });
const failTaskSchema = z.object({ workflowId, error: z.string() });
const joinSessionSchema = z.object({ workflowId, sessionId: sessionIdSchema, task: z.string() });

/** Task bookkeeping in Postgres (idempotent writes keyed by workflow id + step), and a task's place in its session. */
export function createStoreActivities(sql: Sql) {
  const store = createTaskStore(sql);
  const sessions = createSessionStore(sql);
  return adapted({
    joinSession: (input: z.input<typeof joinSessionSchema>) =>
      sessions.joinSession(parseActivityInput(joinSessionSchema, input, 'joinSession input')),
    startTask: (input: z.input<typeof startTaskSchema>) => store.startTask(parseActivityInput(startTaskSchema, input, 'startTask input')),
    recordStep: (input: z.input<typeof recordStepSchema>) =>
      store.recordStep(parseActivityInput(recordStepSchema, input, 'recordStep input')),
    completeTask: async (input: z.input<typeof completeTaskSchema>) => {
      const req = parseActivityInput(completeTaskSchema, input, 'completeTask input');
      if (req.step) await store.recordStep({ workflowId: req.workflowId, ...req.step });
      await store.completeTask(req);
    },
    failTask: (input: z.input<typeof failTaskSchema>) => store.failTask(parseActivityInput(failTaskSchema, input, 'failTask input')),
  });
}

const beginTaskSchema = z.object({ workflowId, task: z.string().min(1), sessionId: sessionIdSchema.optional() });

/**
 * A task's first steps as one activity (each is keyed, so a retry of the whole writes nothing
 * twice): the task's row, its place in its session, the tools its text is offered, and that
 * discovery's record. One local activity is one trip through the workflow's worker, not four.
 */
export function createTaskStartActivities(deps: { sql: Sql; registry: Registry }) {
  const store = createTaskStore(deps.sql);
  const sessions = createSessionStore(deps.sql);
  const calls = createToolCalls({ registry: deps.registry });
  return adapted({
    beginTask: async (input: z.input<typeof beginTaskSchema>) => {
      const { workflowId, task, sessionId } = parseActivityInput(beginTaskSchema, input, 'beginTask input');
      await store.startTask({ workflowId, task });
      const session = sessionId ? await sessions.joinSession({ sessionId, workflowId, task }) : undefined;
      const discovery = await calls.offerTools({ query: task });
      await store.recordStep({ workflowId, step: 'discovery', output: discovery.considered });
      return { tools: discovery.tools, ...(session ? { session } : {}) };
    },
  });
}

const requestApprovalSchema = z.object({
  id: z.string().min(1),
  workflowId,
  kind: z.string().min(1),
  tool: z.string().optional(),
  summary: z.string(),
  request: z.unknown().optional(),
});
const resolveApprovalSchema = z.object({
  id: z.string().min(1),
  status: z.enum(['approved', 'rejected', 'expired']),
  by: z.string().optional(),
});

/** The approvals ledger: what workflows wait for, so a person can list and answer it. */
export function createApprovalActivities(sql: Sql) {
  const ledger = createApprovalLedger(sql);
  return adapted({
    requestApproval: (input: z.input<typeof requestApprovalSchema>) =>
      ledger.requestApproval(parseActivityInput(requestApprovalSchema, input, 'requestApproval input')),
    resolveApproval: (input: z.input<typeof resolveApprovalSchema>) =>
      ledger.resolveApproval(parseActivityInput(resolveApprovalSchema, input, 'resolveApproval input')),
  });
}

const recordForgeRunSchema = z.object({
  workflowId,
  need: z.string(),
  name: z.string().optional(),
  status: z.string().min(1),
  version: z.number().int().positive().optional(),
  reason: z.string().optional(),
  attempts: z.array(object<ForgeAttempt>()),
});
const budgetSchema = z.object({ workflowId, name: z.string().optional() });
const registerSchema = z.object({
  workflowId,
  spec: toolSpecSchema,
  source: z.string().min(1),
  tests: z.string().min(1),
  apiSpec: apiSpecSchema.optional(),
});

/** The forge cycle's run ledger, its daily budget, and its one catalog write. */
const compareSchema = z.object({ workflowId: workflowId.optional(), name: z.string().min(1), source: z.string() });
const beginForgeSchema = z.object({ workflowId, need: z.string(), name: z.string().optional() });
const finishForgeSchema = registerSchema.extend({ need: z.string(), attempts: z.array(object<ForgeAttempt>()) });

export function createForgeStoreActivities(deps: { sql: Sql; registry: Registry; dailyBudget: number; killSwitch: KillSwitch }) {
  const runs = createForgeRuns(deps);
  /**
   * The name check, as this run sees it. A local activity re-runs when the worker dies before the
   * workflow records its result, so the check can run again after this very run's catalog write:
   * the name is then taken by the run's own version, which is its registration to finish (the
   * write replays on its key), never an `unchanged` forge of someone else's same code.
   */
  const compareForRun = async (input: { workflowId?: string; name: string; source: string }) =>
    input.workflowId && (await runs.registeredByRun(input.workflowId)) ? ({ exists: false } as const) : runs.compareWithCurrent(input);
  return adapted({
    /** recordForgeRun (running) and forgeBudget as one activity: the run is counted before the budget is read, as before. */
    beginForgeRun: async (input: z.input<typeof beginForgeSchema>) => {
      const req = parseActivityInput(beginForgeSchema, input, 'beginForgeRun input');
      await runs.recordForgeRun({ ...req, status: 'running', attempts: [] });
      return runs.forgeBudget({ workflowId: req.workflowId, name: req.name });
    },
    /**
     * compareWithCurrent, registerForgedTool and the run's registered record as one activity. A
     * name the catalog holds registers nothing here (the workflow decides: its sameName path). The
     * catalog write alone is refused while frozen, as registerForgedTool is; each step is keyed, so
     * a retry of the whole registers exactly once.
     */
    finishForge: async (
      input: z.input<typeof finishForgeSchema>,
    ): Promise<
      | { taken: Extract<Awaited<ReturnType<typeof runs.compareWithCurrent>>, { exists: true }> }
      | { registered: Awaited<ReturnType<typeof runs.registerForgedTool>> }
    > => {
      const { need, attempts, ...req } = parseActivityInput(finishForgeSchema, input, 'finishForge input');
      // As compareForRun; the guard too is for a write still to happen: a retry after it records the run, frozen or not.
      if (!(await runs.registeredByRun(req.workflowId))) {
        const taken = await runs.compareWithCurrent({ name: req.spec.name, source: req.source });
        if (taken.exists) return { taken };
        await guard(deps.killSwitch, 'registerForgedTool');
      }
      const registered = await runs.registerForgedTool(req);
      const { workflowId } = req;
      await runs.recordForgeRun({ workflowId, need, name: req.spec.name, status: 'registered', version: registered.version, attempts });
      return { registered };
    },
    recordForgeRun: (input: z.input<typeof recordForgeRunSchema>) =>
      runs.recordForgeRun(parseActivityInput(recordForgeRunSchema, input, 'recordForgeRun input')),
    forgeBudget: (input: z.input<typeof budgetSchema>) => runs.forgeBudget(parseActivityInput(budgetSchema, input, 'forgeBudget input')),
    compareWithCurrent: (input: z.input<typeof compareSchema>) =>
      compareForRun(parseActivityInput(compareSchema, input, 'compareWithCurrent input')),
    registerForgedTool: (input: z.input<typeof registerSchema>) =>
      runs.registerForgedTool(parseActivityInput(registerSchema, input, 'registerForgedTool input')),
  });
}

import { z } from 'zod';
import { type ForgeAttempt, toolSpecSchema } from '../domain/forge.ts';
import { sessionIdSchema } from '../domain/session.ts';
import type { TaskResult } from '../domain/task.ts';
import { apiSpecSchema } from '../domain/tool.ts';
import type { Registry } from '../services/catalog/registry.ts';
import { createApprovalLedger } from '../services/control/approvals.ts';
import type { Sql } from '../services/db.ts';
import { createForgeRuns } from '../services/runs/forge-runs.ts';
import { createSessionStore } from '../services/runs/sessions.ts';
import { createTaskStore } from '../services/runs/tasks.ts';
import { adapted, parseActivityInput } from './failures.ts';

const workflowId = z.string().min(1).max(1000);
// Built by workflow code from checked parts; the boundary checks their shape, not every field again.
const object = <T>() => z.custom<T>((v) => typeof v === 'object' && v !== null, 'expected an object');

const startTaskSchema = z.object({ workflowId, task: z.string() });
const recordStepSchema = z.object({ workflowId, step: z.string().min(1), output: z.unknown() });
const completeTaskSchema = z.object({ workflowId, result: object<TaskResult>() });
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
    completeTask: (input: z.input<typeof completeTaskSchema>) =>
      store.completeTask(parseActivityInput(completeTaskSchema, input, 'completeTask input')),
    failTask: (input: z.input<typeof failTaskSchema>) => store.failTask(parseActivityInput(failTaskSchema, input, 'failTask input')),
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
const budgetSchema = z.object({ workflowId });
const registerSchema = z.object({
  workflowId,
  spec: toolSpecSchema,
  source: z.string().min(1),
  tests: z.string().min(1),
  apiSpec: apiSpecSchema.optional(),
});

/** The forge cycle's run ledger, its daily budget, and its one catalog write. */
const compareSchema = z.object({ name: z.string().min(1), source: z.string() });

export function createForgeStoreActivities(deps: { sql: Sql; registry: Registry; dailyBudget: number }) {
  const runs = createForgeRuns(deps);
  return adapted({
    recordForgeRun: (input: z.input<typeof recordForgeRunSchema>) =>
      runs.recordForgeRun(parseActivityInput(recordForgeRunSchema, input, 'recordForgeRun input')),
    forgeBudget: (input: z.input<typeof budgetSchema>) => runs.forgeBudget(parseActivityInput(budgetSchema, input, 'forgeBudget input')),
    compareWithCurrent: (input: z.input<typeof compareSchema>) =>
      runs.compareWithCurrent(parseActivityInput(compareSchema, input, 'compareWithCurrent input')),
    registerForgedTool: (input: z.input<typeof registerSchema>) =>
      runs.registerForgedTool(parseActivityInput(registerSchema, input, 'registerForgedTool input')),
  });
}

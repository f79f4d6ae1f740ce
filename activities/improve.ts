import { z } from 'zod';
import { gateReportSchema, improveTriggerSchema, observedFailureSchema } from '../domain/improve.ts';
import type { Registry } from '../services/catalog/registry.ts';
import type { KillSwitch } from '../services/control/kill-switch.ts';
import type { Sql } from '../services/db.ts';
import type { Llm } from '../services/llm/client.ts';
import { createImproveAuthor, diagnoseInputSchema, rewriteInputSchema } from '../services/llm/improve-author.ts';
import { createImproveRuns } from '../services/runs/improve-runs.ts';
import { adapted, parseActivityInput } from './failures.ts';
import { guarded } from './guard.ts';

const toolName = z.string().min(1);
const beginSchema = z.object({
  workflowId: z.string().min(1),
  tool: toolName,
  trigger: improveTriggerSchema,
  reason: z.string().optional(),
});
const finishSchema = z.object({
  workflowId: z.string().min(1),
  status: z.string().min(1),
  reason: z.string(),
  toVersion: z.number().int().positive().optional(),
  report: z.unknown().optional(),
  /** the cycle's rewrites, each passed by the gate or not (absent from histories that predate it) */
  attempts: z.array(z.object({ attempt: z.number().int(), passed: z.boolean(), summary: z.string() })).optional(),
});
const evidenceSchema = z.object({
  tool: toolName,
  version: z.number().int().positive(),
  failures: z.array(observedFailureSchema).max(20),
  replays: z.number().int().min(0).max(50),
});
const promoteSchema = z.object({
  workflowId: z.string().min(1),
  tool: toolName,
  fromVersion: z.number().int().positive(),
  source: z.string().min(1),
  tests: z.string().min(1),
  cases: z.array(z.object({ name: z.string().min(1).max(300), input: z.unknown() })).max(20),
  gate: gateReportSchema,
  reason: z.string(),
});
const archiveSchema = z.object({ workflowId: z.string().min(1), tool: toolName, reason: z.string().min(1) });
const inheritSchema = z.object({ workflowId: z.string().min(1), from: toolName, to: toolName });
const diagnoseActivitySchema = diagnoseInputSchema.omit({ source: true });

/**
 * The improve cycle's steps on the control queue, and a task's diagnosis of a failed call. The
 * catalog writes (promotion, archive) and the model calls are refused while frozen.
 */
export function createImproveActivities(deps: { sql: Sql; registry: Registry; llm: Llm; killSwitch: KillSwitch }) {
  const { sql, registry, llm, killSwitch } = deps;
  const runs = createImproveRuns({ sql, registry, evaluate: (tool) => registry.scoreTool(tool) });
  const author = createImproveAuthor(llm);

  const open = adapted({
    beginImprove: (input: z.input<typeof beginSchema>) => runs.beginImprove(parseActivityInput(beginSchema, input, 'beginImprove input')),
    finishImprove: (input: z.input<typeof finishSchema>) =>
      runs.finishImprove(parseActivityInput(finishSchema, input, 'finishImprove input')),
    gatherEvidence: (input: z.input<typeof evidenceSchema>) =>
      runs.gatherEvidence(parseActivityInput(evidenceSchema, input, 'gatherEvidence input')),
    inheritCases: (input: z.input<typeof inheritSchema>) =>
      runs.inheritCases(parseActivityInput(inheritSchema, input, 'inheritCases input')),
  });
  const costly = adapted({
    promoteRewrite: (input: z.input<typeof promoteSchema>) =>
      runs.promoteRewrite(parseActivityInput(promoteSchema, input, 'promoteRewrite input')),
    archiveDegraded: (input: z.input<typeof archiveSchema>) =>
      runs.archiveDegraded(parseActivityInput(archiveSchema, input, 'archiveDegraded input')),
    rewriteTool: (input: z.input<typeof rewriteInputSchema>) =>
      author.rewriteTool(parseActivityInput(rewriteInputSchema, input, 'rewriteTool input')),
    async diagnoseFailure(input: z.input<typeof diagnoseActivitySchema>) {
      const parsed = parseActivityInput(diagnoseActivitySchema, input, 'diagnoseFailure input');
      const [row] = await sql<{ source: string }[]>`
        select source from tool_versions where name = ${parsed.tool} and version = ${parsed.version}`;
      return author.diagnoseFailure({ ...parsed, source: row?.source ?? '(the source is not in the catalog)' });
    },
  });
  return { ...open, ...guarded(costly, killSwitch) };
}

export type ImproveActivities = ReturnType<typeof createImproveActivities>;

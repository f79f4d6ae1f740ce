import { z } from 'zod';
import { ForgeError } from './errors.ts';
import type { ModelEndpoint } from './llm-retry.ts';
import { OUTSIDE_END_STATUSES } from './outside-end.ts';
import { type ApiSpec, apiSpecSchema, permissionsSchema, sideEffectSchema, toolNameSchema } from './tool.ts';
import type { VerifyReport } from './verification.ts';

/**
 * The forge cycle's data: what is asked for, what the model writes at each step, and what the
 * workflow reports. Pure, so the forge workflow imports it.
 */

/** A cap on repairs per forge (each is a model call and a sandbox run); the default is the harness's. */
export const maxRepairsSchema = z.number().int().min(0).max(3);

export const forgeRequestSchema = z.strictObject({
  /** what the tool must do, in the user's words */
  need: z.string().trim().min(8, 'describe the tool in at least a sentence').max(4000),
  /** a suggested snake_case name; the model may keep it */
  name: toolNameSchema.optional(),
  /** API documentation (prose) to reverse-engineer */
  apiDocs: z.string().max(200_000).optional(),
  /** an OpenAPI document (JSON) */
  openApi: z.unknown().optional(),
  /** the sandbox task queue; the client fills it from FORGE_SANDBOX_QUEUE */
  sandboxQueue: z.string().min(1).default('forge-sandbox'),
  /** how long to wait for a person when the daily budget is spent */
  budgetApprovalTimeout: z.string().default('24 hours'),
  /** absent: the harness's policy (harness.policy.forge.maxRepairs) */
  maxRepairs: maxRepairsSchema.optional(),
});
export type ForgeRequest = z.input<typeof forgeRequestSchema>;

/** Step 1: the spec. Parameters are a JSON Schema object the implementation's zod input must match. */
export const toolSpecSchema = z.strictObject({
  name: toolNameSchema.describe('snake_case tool name'),
  description: z.string().min(10).max(1000).describe('One paragraph: what it does, for discovery'),
  docstring: z.string().min(10).max(4000).describe('Usage notes: parameters, return value, errors, edge cases'),
  parameters: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]*$/),
        type: z.enum(['string', 'number', 'integer', 'boolean', 'array', 'object']),
        description: z.string().min(1),
        required: z.boolean().default(true),
      }),
    )
    .max(20)
    .describe('The input parameters'),
  returns: z.strictObject({ type: z.string().min(1), description: z.string().min(1) }).describe('What run() returns'),
  sideEffect: sideEffectSchema.describe('read: changes nothing anywhere; write: creates, changes or deletes something'),
  destructive: z.boolean().default(false).describe('true when a call can delete or overwrite data'),
  permissions: permissionsSchema.describe('Network domains it may reach and environment variables it may read'),
});
export type ToolSpec = z.infer<typeof toolSpecSchema>;

export const apiSpecReplySchema = z.strictObject({
  needsApi: z.boolean().describe('false when the tool needs no HTTP API at all'),
  apiSpec: apiSpecSchema.optional(),
});

export const testsReplySchema = z.strictObject({
  tests: z.string().min(20).describe('The complete tool.test.ts source (node:test + @forge/testkit)'),
});

export const implementationReplySchema = z.strictObject({
  source: z.string().min(20).describe('The complete tool.ts source'),
  notes: z.string().max(2000).optional(),
});

export const repairReplySchema = z.strictObject({
  diagnosis: z.string().min(1).max(2000).describe('What was wrong, in one or two sentences'),
  source: z.string().min(20).describe('The complete corrected tool.ts source'),
});

export const forgePhases = [
  'budget',
  'awaiting-budget-approval',
  'spec',
  'api',
  'tests',
  'implementation',
  'verifying',
  'repairing',
  'registering',
  'gating',
  'registered',
  'failed',
] as const;
export type ForgePhase = (typeof forgePhases)[number];

export interface ForgeAttempt {
  attempt: number;
  passed: boolean;
  summary: string;
}

export interface ForgeProgress {
  phase: ForgePhase;
  toolName?: string;
  attempts: ForgeAttempt[];
  history: { phase: ForgePhase; at: string; note?: string }[];
  frozen?: boolean;
}

export type ForgeOutcome =
  | {
      status: 'registered';
      name: string;
      version: number;
      attempts: number;
      report: VerifyReport;
      /** set when the name was taken: the code was already current, or passed the tool's regression gate */
      note?: string;
    }
  | {
      status: 'failed';
      name?: string;
      reason: string;
      attempts: ForgeAttempt[];
      report?: VerifyReport;
      /** the step failed because the model server could not be reached: a component down, not the forge's failure */
      modelUnreachable?: ModelEndpoint;
    };

/**
 * How a forge run stands in its ledger (forge_runs.status): still going, what it came to — a new
 * tool, the very code a tool already had (`unchanged`), a new version through that tool's gate
 * (`new-version`), or nothing (`failed`) — or how it ended from outside (domain/outside-end.ts).
 */
export const forgeRunStatusSchema = z.enum([
  'running',
  'awaiting-budget-approval',
  'registered',
  'unchanged',
  'new-version',
  ...OUTSIDE_END_STATUSES,
]);
export type ForgeRunStatus = z.infer<typeof forgeRunStatusSchema>;

export class ForgeNotFoundError extends ForgeError {
  constructor(workflowId: string) {
    super(
      `no forge ${workflowId} in the forge runs`,
      'FORGE_NOT_FOUND',
      'use the forge id forge forge printed (forge-…); forge forges lists recent ones',
      { workflowId },
    );
  }
}

export function toolFiles(source: string, tests: string, apiSpec: ApiSpec | undefined): Record<string, string> {
  const files: Record<string, string> = { 'tool.ts': source, 'tool.test.ts': tests };
  if (apiSpec) files['api-spec.json'] = JSON.stringify(apiSpec, null, 2);
  return files;
}

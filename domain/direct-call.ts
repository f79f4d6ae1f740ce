import { z } from 'zod';
import { toolNameSchema } from './tool.ts';

/**
 * A catalog tool called directly by a surface (an MCP client), outside any task: the tool call
 * cycle (workflows/tool-call.ts) runs it through the same trust gate, approval, sandbox, metering
 * and audit as a task's call, and says in the audit log who called it.
 */
export const directCallSourceSchema = z.strictObject({
  /** the surface the call came through */
  surface: z.literal('mcp'),
  /** the client's name as it introduced itself (MCP clientInfo.name), e.g. claude-code */
  client: z.string().trim().min(1).max(200),
});
export type DirectCallSource = z.infer<typeof directCallSourceSchema>;

export const directCallInputSchema = z.strictObject({
  tool: toolNameSchema,
  /** the arguments, judged against the tool's declared input schema inside the cycle (never before: a refusal is audited) */
  input: z.unknown(),
  source: directCallSourceSchema,
  /** the sandbox task queue; the client fills it from FORGE_SANDBOX_QUEUE */
  sandboxQueue: z.string().min(1).default('forge-sandbox'),
});
export type DirectCallInput = z.input<typeof directCallInputSchema>;

export const directCallPhases = [
  'gating',
  'awaiting-approval',
  'running',
  'retrying',
  'recording',
  'succeeded',
  'failed',
  'not-run',
] as const;
export type DirectCallPhase = (typeof directCallPhases)[number];

export interface DirectCallProgress {
  phase: DirectCallPhase;
  history: { phase: DirectCallPhase; at: string; note?: string }[];
  frozen?: boolean;
  pendingApproval?: string;
  tool: string;
  version?: number;
}

export interface DirectCallResult {
  workflowId: string;
  tool: string;
  version?: number;
  /** succeeded: the tool ran and returned; failed: it ran and failed, or its input did not fit; not-run: refused before it ran */
  status: 'succeeded' | 'failed' | 'not-run';
  output?: unknown;
  reason?: string;
  /** the caller's mistake: input the tool's schema refused (audited as refused_call, never metered) */
  slip?: 'invalid-input';
  /** the person's decision, for a call that needed one */
  approval?: { id: string; decision: 'approved' | 'rejected' | 'timed-out'; by?: string };
  /** attempts after the first, for a failure that looked transient */
  retries: number;
  latencyMs?: number;
}

/** The line the audit log keeps as the call's reasoning: where it came from, since no model turn explains it. */
export function directCallReasoning(source: DirectCallSource): string {
  return `${source.surface}: ${source.client}`;
}

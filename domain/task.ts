import { z } from 'zod';
import type { Plan } from './plan.ts';
import { NODE_PATH } from './sandbox-image.ts';

/** What a client hands Forge. Validated at the client (clear CLI error) and again in the workflow. */
export const taskInputSchema = z.strictObject({
  task: z.string().trim().min(3, 'describe the task in at least a few words').max(4000, 'keep the task under 4000 characters'),
  /** the sandbox task queue; the client fills it from FORGE_SANDBOX_QUEUE */
  sandboxQueue: z.string().min(1).default('forge-sandbox'),
});
export type TaskInput = z.input<typeof taskInputSchema>;

export const taskPhases = [
  'starting',
  'planning',
  'recording',
  'discovering',
  'forging',
  'awaiting-approval',
  'executing',
  'sandbox',
  'answering',
  'completed',
  'failed',
] as const;
export type TaskPhase = (typeof taskPhases)[number];

export interface TaskProgress {
  phase: TaskPhase;
  history: { phase: TaskPhase; at: string; note?: string }[];
  plan?: Plan;
  sandbox?: SandboxRun;
  frozen?: boolean;
  pendingApproval?: string;
}

/** What happened to the tool call a task needed. */
export interface ToolCallOutcome {
  tool: string;
  version?: number;
  status: 'succeeded' | 'failed' | 'not-run';
  input?: unknown;
  output?: unknown;
  reason?: string;
}

export interface SandboxRun {
  exitCode: number | null;
  stdout: string;
  durationMs: number;
}

export interface TaskResult {
  workflowId: string;
  task: string;
  answer: string;
  plan: Plan;
  /** the sandbox probe, when the task needed no tool */
  sandbox?: SandboxRun;
  tool?: ToolCallOutcome;
}

/** A fixed, harmless command that proves the sandbox runs; it echoes facts about its own confinement. */
export function sandboxProbeCommand(stepCount: number): string[] {
  return [
    NODE_PATH,
    '-e',
    'console.log(JSON.stringify({ node: process.version, uid: process.getuid(), steps: Number(process.argv[1]) }))',
    String(stepCount),
  ];
}

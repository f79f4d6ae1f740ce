import { z } from 'zod';
import { NODE_PATH } from '../runner/protocol.ts';
import type { Plan } from './plan.ts';

/** What a client hands Forge. Validated at the client (clear CLI error) and again in the workflow. */
export const taskInputSchema = z.strictObject({
  task: z.string().trim().min(3, 'describe the task in at least a few words').max(4000, 'keep the task under 4000 characters'),
  /** the sandbox task queue; the client fills it from FORGE_SANDBOX_QUEUE */
  sandboxQueue: z.string().min(1).default('forge-sandbox'),
});
export type TaskInput = z.input<typeof taskInputSchema>;

export const taskPhases = ['starting', 'planning', 'recording', 'sandbox', 'answering', 'completed', 'failed'] as const;
export type TaskPhase = (typeof taskPhases)[number];

export interface TaskProgress {
  phase: TaskPhase;
  history: { phase: TaskPhase; at: string; note?: string }[];
  plan?: Plan;
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
  sandbox: SandboxRun;
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

export function composeAnswer(plan: Plan, sandbox: SandboxRun): string {
  const steps = plan.steps.map((s, i) => `  ${i + 1}. ${s.title}`).join('\n');
  return `${plan.summary}\nPlan:\n${steps}\nSandbox check: exit ${sandbox.exitCode}, ${sandbox.stdout.trim()}`;
}

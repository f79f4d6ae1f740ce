import type { Plan } from '../../domain/plan.ts';
import type { SandboxRun, ToolCallOutcome } from '../../domain/task.ts';

/** The task's final answer: the plan, then what the sandbox probe or the tool call produced. */
export function answer(plan: Plan, sandbox?: SandboxRun, tool?: ToolCallOutcome): string {
  const steps = plan.steps.map((s, i) => `  ${i + 1}. ${s.title}`).join('\n');
  const lines = [plan.summary, 'Plan:', steps];
  if (sandbox) lines.push(`Sandbox check: exit ${sandbox.exitCode}, ${sandbox.stdout.trim()}`);
  if (tool) {
    const head = `${tool.tool}${tool.version ? ` v${tool.version}` : ''}`;
    lines.push(
      tool.status === 'succeeded'
        ? `Tool ${head} answered: ${JSON.stringify(tool.output)}`
        : `Tool ${head} ${tool.status === 'failed' ? 'failed' : 'did not run'}: ${tool.reason ?? 'unknown reason'}`,
    );
  }
  return lines.join('\n');
}

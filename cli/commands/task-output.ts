import type { Session } from '../../app/context.ts';
import { type StartedCycle, workflowUiUrl } from '../../app/cycles.ts';
import { componentDownIn } from '../../app/follow.ts';
import { followTask, type TaskResult } from '../../app/tasks.ts';
import { clipJson, printJson, reportCycleFailure, say } from '../output.ts';
import { progressPrinter } from '../progress.ts';
import { followWarnings } from './follow-warnings.ts';

/**
 * How a task's end reads, shared by `forge run --wait` and `forge tasks show [--wait]`, so a task
 * re-attached to later reads exactly as one followed from its start.
 */

type Calls = TaskResult['calls'];

/** What the task did about a failed call: retries, the diagnosis, the repair (with its cycle's UI link) or the escalation. */
function recoveryLines(c: Calls[number], link: (workflowId: string) => string | null): string[] {
  const r = c.recovery;
  if (!r) return [];
  const lines: string[] = [];
  if (r.retries) lines.push(`retried ${r.retries} time(s): the failure looked transient`);
  if (r.diagnosis)
    lines.push(`diagnosis (${r.diagnosis.atFault} at fault${r.diagnosis.fixable ? ', fixable' : ''}): ${r.diagnosis.diagnosis}`);
  if (r.repair) {
    const url = link(r.repair.workflowId);
    lines.push(
      `repair ${r.repair.workflowId}: ${r.repair.status}${r.repair.toVersion ? ` → v${r.repair.toVersion}` : ''}${url ? `  ${url}` : ''}`,
    );
  }
  if (r.escalation) lines.push(`escalated to a person (approval ${r.escalation.approvalId ?? '?'}): ${r.escalation.decision}`);
  return lines.map((l) => `       ↳ ${l}`);
}

/** The calls the agent made, one line each: the chain a person checks the answer against. */
export function callLines(calls: Calls, link: (workflowId: string) => string | null): string[] {
  if (!calls.length) return ['calls: none'];
  return [
    'calls:',
    ...calls.flatMap((c) => {
      const head = `  ${c.turn}. ${c.tool}${c.version ? ` v${c.version}` : ''} ${clipJson(c.input, 100)}`;
      const line = c.status === 'succeeded' ? `${head} → ${clipJson(c.output ?? null, 100)}` : `${head} → ${c.status}: ${c.reason ?? ''}`;
      return [line, ...recoveryLines(c, link)];
    }),
  ];
}

/** The option that sets each bound: a stopped task names the one a person raises, not the workflow's field. */
const BOUND_OPTION: Record<NonNullable<TaskResult['stoppedBy']>, string> = {
  maxTurns: '--max-turns',
  maxToolCalls: '--max-tool-calls',
  maxTokens: '--max-tokens',
};

/** A task's status line: `completed`, or `stopped (--max-turns)` when a bound stopped it. */
export const statusLine = (r: Pick<TaskResult, 'status' | 'stoppedBy'>): string =>
  `${r.status}${r.stoppedBy ? ` (${BOUND_OPTION[r.stoppedBy]})` : ''}`;

/** A task's result: its status (and the bound that stopped it), its answer, the calls behind it. Exit 0 only when completed. */
export function reportTaskResult(
  session: Session,
  result: TaskResult,
  opts: { json: boolean; uiUrl: string | null; extra?: Record<string, unknown> },
): number {
  // A task whose call failed, or that a bound stopped, did not do what was asked.
  const ok = result.status === 'completed';
  if (opts.json) printJson({ ok, workflowId: result.workflowId, uiUrl: opts.uiUrl, ...opts.extra, status: result.status, result });
  else {
    say(`${statusLine(result)}\n${result.answer}`);
    for (const line of callLines(result.calls, (id) => workflowUiUrl(session.cfg, id))) say(line);
  }
  return ok ? 0 : 1;
}

/**
 * Follows a task to its end, printing each transition (unless --json) and warning once when no
 * worker serves it, then reports its end as `forge run --wait` always has.
 */
export async function followAndReport(
  session: Session,
  started: StartedCycle,
  opts: { json: boolean; extra?: Record<string, unknown> },
): Promise<number> {
  const print = progressPrinter();
  const end = await followTask(session, started, {
    onProgress: opts.json ? undefined : print,
    ...followWarnings(session, 'task', print),
  });
  print.stop();
  if (end.ok) return reportTaskResult(session, end.result, { json: opts.json, uiUrl: started.uiUrl, extra: opts.extra });
  const down = componentDownIn(session.cfg, started.workflowId, end);
  return reportCycleFailure(opts.json, started, end.error, { ...opts.extra, status: end.ended ?? 'failed' }, down);
}

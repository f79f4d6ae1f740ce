import type { Session } from '../../app/context.ts';
import type { StartedCycle } from '../../app/cycles.ts';
import type { CycleEnd } from '../../app/follow.ts';
import { followImprove, type ImproveOutcome } from '../../app/improve.ts';
import { printJson, say } from '../output.ts';
import { progressPrinter } from '../progress.ts';
import { reportWithoutOutcome } from './cycle-end.ts';
import { followWarnings } from './follow-warnings.ts';
import { gateLines } from './gate-lines.ts';

/**
 * How an improve cycle's end reads, shared by `forge improve <tool> --wait` and `forge improve show
 * [--wait]`, so a cycle seen later reads exactly as one followed from its start; the gate's lines
 * (gate-lines.ts) are `forge tools history`'s too.
 */

/** What the cycle came to: its status and why, then the last gate's report, line by line. */
export function improveOutcomeLines(outcome: Pick<ImproveOutcome, 'status' | 'reason' | 'gate'>): string[] {
  return [`${outcome.status}: ${outcome.reason}`, ...gateLines(outcome.gate)];
}

/**
 * An improve cycle's end: its outcome (exit 0 when promoted or skipped), the model nobody could
 * reach (exit 3, with the fix), or why its workflow ended without an outcome.
 */
export function reportImproveEnd(
  session: Session,
  started: Pick<StartedCycle, 'workflowId' | 'uiUrl'>,
  end: CycleEnd<ImproveOutcome>,
  json: boolean,
): number {
  const unreached = reportWithoutOutcome(session.cfg, started, end, json);
  if (unreached !== undefined || !end.ok) return unreached ?? 1;
  const outcome = end.result;
  const ok = outcome.status === 'promoted' || outcome.status === 'skipped';
  if (json) printJson({ ok, workflowId: started.workflowId, uiUrl: started.uiUrl, outcome });
  else for (const line of improveOutcomeLines(outcome)) say(line);
  return ok ? 0 : 1;
}

/** Follows an improve cycle to its end, printing each transition (unless --json) and what holds it, then reports its end. */
export async function followImproveAndReport(session: Session, started: StartedCycle, opts: { json: boolean }): Promise<number> {
  const print = progressPrinter();
  const end = await followImprove(session, started, {
    onProgress: opts.json ? undefined : print,
    ...followWarnings(session, 'improve cycle', print),
  });
  print.stop();
  return reportImproveEnd(session, started, end, opts.json);
}

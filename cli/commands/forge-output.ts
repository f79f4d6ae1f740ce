import type { Session } from '../../app/context.ts';
import type { StartedCycle } from '../../app/cycles.ts';
import { type CycleEnd, componentDownIn, modelDownError } from '../../app/follow.ts';
import { followForge, type ReportedForgeOutcome } from '../../app/forge.ts';
import { printJson, reportCycleFailure, say } from '../output.ts';
import { progressPrinter } from '../progress.ts';
import { followWarnings } from './follow-warnings.ts';

/**
 * How a forge's end reads, shared by `forge forge --wait` and `forge forges show [--wait]`, so a
 * forge re-attached to later reads exactly as one followed from its start.
 */

/** What the forge came to, in one line: registered, what a name the catalog held came to, or why nothing was. */
export function forgeOutcomeLine(outcome: ReportedForgeOutcome): string {
  if (outcome.status !== 'registered') return `not registered: ${outcome.reason}`;
  // a name the catalog held: what it came to (nothing new, or a new version through its gate)
  return outcome.note ?? `registered ${outcome.name} v${outcome.version} after ${outcome.attempts} verification(s)`;
}

/**
 * A forge's end: its outcome line (exit 0 only when registered), the model nobody could reach
 * (exit 3, with the fix), or why its workflow ended without an outcome.
 */
export function reportForgeEnd(
  session: Session,
  started: Pick<StartedCycle, 'workflowId' | 'uiUrl'>,
  end: CycleEnd<ReportedForgeOutcome>,
  json: boolean,
): number {
  const { cfg } = session;
  if (!end.ok)
    return reportCycleFailure(
      json,
      started,
      end.error,
      end.ended ? { status: end.ended } : {},
      componentDownIn(cfg, started.workflowId, end),
    );
  const outcome = end.result;
  if (outcome.status === 'failed' && outcome.modelUnreachable)
    return reportCycleFailure(
      json,
      started,
      outcome.reason,
      { outcome },
      modelDownError(cfg, started.workflowId, outcome.modelUnreachable),
    );
  const registered = outcome.status === 'registered';
  if (json) printJson({ ok: registered, workflowId: started.workflowId, uiUrl: started.uiUrl, outcome });
  else say(forgeOutcomeLine(outcome));
  return registered ? 0 : 1;
}

/** Follows a forge to its end, printing each transition (unless --json), then reports its end as `forge forge --wait` always has. */
export async function followForgeAndReport(session: Session, started: StartedCycle, opts: { json: boolean }): Promise<number> {
  const print = progressPrinter();
  const end = await followForge(session, started, {
    onProgress: opts.json ? undefined : print,
    ...followWarnings(session, 'forge', print),
  });
  print.stop();
  return reportForgeEnd(session, started, end, opts.json);
}

import type { Session } from '../../app/context.ts';
import type { StartedCycle } from '../../app/cycles.ts';
import type { CycleEnd } from '../../app/follow.ts';
import { type ForgeView, followForge, type ReportedForgeOutcome, unjudgedStages } from '../../app/forge.ts';
import { printJson, say } from '../output.ts';
import { progressPrinter } from '../progress.ts';
import { reportWithoutOutcome } from './cycle-end.ts';
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
 * The stages a registered tool's verification skipped, one line each with why, when they leave
 * something unjudged (the live stage of a tool that calls an API, offline or without its
 * credentials), and the command that judges it once a real call can be made.
 */
export async function unjudgedLines(session: Session, outcome: ReportedForgeOutcome, attempts?: ForgeView['attempts']): Promise<string[]> {
  const unjudged = await unjudgedStages(session, outcome, attempts);
  if (!unjudged) return [];
  return unjudged.stages.map((s) => {
    // The live stage's own reason may already begin with these words.
    const reason = s.reason.replace(new RegExp(`^${s.stage} stage skipped:\\s*`, 'i'), '');
    // …and may say already that no real call judged the tool (the environment could not reach the API).
    const unjudgedWords = /no real call judged/i.test(reason) ? '' : ' — no real call judged the tool';
    return `  ${s.stage} stage skipped: ${reason}${unjudgedWords}; to judge one: forge sandbox verify ${unjudged.folder}`;
  });
}

/**
 * A forge's end: its outcome line (exit 0 only when registered) with any stage its verification
 * skipped, the model nobody could reach (exit 3, with the fix), or why its workflow ended without
 * an outcome. `attempts`: its ledger row's, for a forge whose outcome carries no report.
 */
export async function reportForgeEnd(
  session: Session,
  started: Pick<StartedCycle, 'workflowId' | 'uiUrl'>,
  end: CycleEnd<ReportedForgeOutcome>,
  json: boolean,
  attempts?: ForgeView['attempts'],
): Promise<number> {
  const unreached = reportWithoutOutcome(session.cfg, started, end, json);
  if (unreached !== undefined || !end.ok) return unreached ?? 1;
  const outcome = end.result;
  const registered = outcome.status === 'registered';
  if (json) printJson({ ok: registered, workflowId: started.workflowId, uiUrl: started.uiUrl, outcome });
  else for (const line of [forgeOutcomeLine(outcome), ...(await unjudgedLines(session, outcome, attempts))]) say(line);
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

import { say } from './output.ts';

interface Progress {
  phase: string;
  history: { phase: string; at: string; note?: string }[];
  pendingApproval?: string;
}

/**
 * Prints a workflow's state machine as it moves: every transition since the last poll (so quick
 * phases are not skipped), and once, what a person must do when it waits for them.
 */
export function progressPrinter() {
  let printed = 0;
  let askedFor: string | undefined;
  return (p: Progress) => {
    for (const h of p.history.slice(printed)) say(`  … ${h.phase}${h.note ? ` — ${h.note}` : ''}`);
    printed = p.history.length;
    if (p.pendingApproval && p.pendingApproval !== askedFor) {
      askedFor = p.pendingApproval;
      say(
        p.phase === 'awaiting-answer'
          ? `  waiting for your answer: forge answer ${p.pendingApproval} "<your answer>"   (or decline: forge reject ${p.pendingApproval})`
          : `  waiting for a person: forge approve ${p.pendingApproval}   (or: forge reject ${p.pendingApproval})`,
      );
    }
  };
}

import { say } from './output.ts';

/** What every long cycle's progress query answers (task, forge, improve), as far as printing goes. */
export interface Progress {
  phase: string;
  history: { phase: string; at: string; note?: string }[];
  pendingApproval?: string;
  /** a task: the child cycle (a forge) the pending approval is for, with its phase and that phase's note */
  waitingIn?: { workflowId: string; phase: string; note?: string };
  /** a task: the model turn it is on */
  turn?: number;
  /** an improve cycle: the rewrite attempt it is on */
  attempt?: number;
  /** a forge or improve cycle: the verifications (or rewrites) done so far */
  attempts?: unknown[];
  frozen?: boolean;
}

export interface ProgressPrinter {
  (p: Progress): void;
  /** Clears the live line (on a TTY) before the command prints its result. */
  stop(): void;
}

/** The phases a cycle ends in (task, forge, improve, evolve, deploy). */
const TERMINAL = new Set([
  'completed',
  'failed',
  'stopped',
  'registered',
  'promoted',
  'kept',
  'skipped',
  'archived',
  'refused',
  'rejected',
  'expired',
  'rolled-back',
]);

/** "turn 3" for a task, "attempt 2" for a forge's verification or an improve's rewrite; undefined before the first. */
export function attemptLabel(p: Progress): string | undefined {
  if (p.turn) return `turn ${p.turn}`;
  if (p.attempt) return `attempt ${p.attempt}`;
  // A forge lists its verifications as they finish: while it verifies, it is on the next one.
  const n = (p.attempts?.length ?? 0) + (p.phase === 'verifying' ? 1 : 0);
  return n > 0 ? `attempt ${n}` : undefined;
}

/** What a child cycle waits for a person about, in words: a forge past the daily budget, or its phase. */
function waitingFor(w: NonNullable<Progress['waitingIn']>): string {
  const note = w.note ? ` (${w.note})` : '';
  return w.phase === 'awaiting-budget-approval'
    ? `forging its new tool goes past today's forge budget${note}`
    : `its ${w.workflowId} is ${w.phase}${note}`;
}

export function seconds(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/**
 * Prints a cycle's state machine as it moves: every transition since the last poll (so quick phases
 * are not skipped), each with the time since the cycle started, and once, what a person must do
 * when it waits for them. On a terminal, a live last line shows the phase, the attempt and the
 * elapsed time, redrawn at every poll; anywhere else (a pipe, a log file, CI) only plain lines are
 * printed, with no control characters.
 */
export function progressPrinter(opts: { tty?: boolean; write?: (s: string) => void; now?: () => number } = {}): ProgressPrinter {
  const tty = opts.tty ?? Boolean(process.stdout.isTTY);
  const write = opts.write ?? ((s: string) => process.stdout.write(s));
  const line = opts.write ? (s: string) => write(`${s}\n`) : say;
  const now = opts.now ?? Date.now;
  const started = now();
  let printed = 0;
  let askedFor: string | undefined;
  let live = false;

  const clearLive = () => {
    if (live) write('\r\x1b[2K');
    live = false;
  };
  /** the cycle's own clock when it has one (its first transition), else when following began */
  const origin = (p: Progress) => {
    const first = p.history[0] ? Date.parse(p.history[0].at) : Number.NaN;
    return Number.isFinite(first) ? Math.min(first, started) : started;
  };

  const print = ((p: Progress) => {
    clearLive();
    const zero = origin(p);
    for (const h of p.history.slice(printed)) {
      const at = Date.parse(h.at);
      const offset = Number.isFinite(at) ? at - zero : now() - zero;
      // The last transition's note is the outcome's reason, which the command prints right after
      // (`refused: …`, the task's answer): shown here too, a person read every failure twice.
      const note = h.note && !TERMINAL.has(h.phase) ? ` — ${h.note}` : '';
      line(`  … ${seconds(offset).padStart(8)}  ${h.phase}${note}`);
    }
    printed = p.history.length;
    if (p.pendingApproval && p.pendingApproval !== askedFor) {
      askedFor = p.pendingApproval;
      line(
        p.phase === 'awaiting-answer'
          ? `  waiting for your answer: forge answer ${p.pendingApproval} "<your answer>"   (or decline: forge reject ${p.pendingApproval})`
          : `  waiting for a person${p.waitingIn ? ` — ${waitingFor(p.waitingIn)}` : ''}: forge approve ${p.pendingApproval}   (or: forge reject ${p.pendingApproval})`,
      );
    }
    if (tty && !TERMINAL.has(p.phase)) {
      const attempt = attemptLabel(p);
      write(
        `  ⏵ ${p.phase}${attempt ? ` · ${attempt}` : ''}${p.pendingApproval ? ' · waiting for a person' : ''}${p.frozen ? ' · frozen' : ''} · ${seconds(now() - zero)}`,
      );
      live = true;
    }
  }) as ProgressPrinter;
  print.stop = clearLive;
  return print;
}

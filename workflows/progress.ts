import { unlessFrozen } from './frozen.ts';

interface Progress<P extends string> {
  phase: P;
  history: { phase: P; at: string; note?: string }[];
  frozen?: boolean;
}

/**
 * A cycle's visible state machine: the phase a person sees in `forge … --wait` and in the workflow's
 * query, with a history of transitions and whether the kill switch is holding it.
 */
export function track<P extends string>(progress: Progress<P>) {
  return {
    enter(phase: P, note?: string): void {
      progress.phase = phase;
      progress.history.push({ phase, at: new Date().toISOString(), note });
    },
    note(note: string): void {
      progress.history.push({ phase: progress.phase, at: new Date().toISOString(), note });
    },
    /** A side-effecting step that waits out a freeze (see frozen.ts). */
    guarded<T>(step: () => Promise<T>): Promise<T> {
      return unlessFrozen(step, (frozen) => {
        if (frozen && !progress.frozen)
          progress.history.push({ phase: progress.phase, at: new Date().toISOString(), note: 'frozen: waiting for forge thaw' });
        progress.frozen = frozen;
      });
    },
  };
}

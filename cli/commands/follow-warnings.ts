import type { Session } from '../../app/context.ts';
import type { StallHooks, WatchedQueue } from '../../app/worker-watch.ts';
import type { ProgressPrinter } from '../progress.ts';

/**
 * What every `--wait` follower (forge run, forge tasks show, forge forge, forge forges show, forge
 * improve, forge improve show) says, once, on stderr, when the cycle it follows cannot move: no
 * worker serves a queue it waits on, or its model call keeps failing to connect.
 */

/** The kind of cycle followed, as the warning names it. */
export type FollowedNoun = 'task' | 'forge' | 'improve cycle';

/** What is wrong and what fixes it, when no worker serves a queue the followed cycle needs. */
export function noWorkerWarning(home: string, noun: FollowedNoun, missing: WatchedQueue & { phase?: string }): string {
  const what =
    missing.role === 'sandbox'
      ? `the sandbox queue, where tool calls and forge verifications run in Docker`
      : `the control queue, where the ${noun}'s workflow and model calls run`;
  const waits = missing.phase ? `the ${noun} waits at ${missing.phase}` : `no worker has begun the ${noun}`;
  return (
    `warning: no worker polls ${missing.name} (${what}): ${waits} until one does\n` +
    `  fix: forge up starts the missing worker (or run one in the foreground: forge worker); forge doctor says what is down (worker log: ${home}/logs/worker.log)\n`
  );
}

/** The hooks that print those warnings, clearing the live progress line first. */
export function followWarnings(session: Session, noun: FollowedNoun, print: Pick<ProgressPrinter, 'stop'>): Required<StallHooks> {
  const warn = (text: string) => {
    print.stop();
    process.stderr.write(text);
  };
  return {
    onNoWorker: (missing) => warn(noWorkerWarning(session.cfg.home, noun, missing)),
    // If the model stays down the cycle fails, exit 3, with the same fix.
    onModelUnreachable: (down) => warn(`warning: ${down.message}\n  fix: ${down.fix}\n`),
  };
}

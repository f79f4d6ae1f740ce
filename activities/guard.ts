import type { KillSwitch } from '../services/control/kill-switch.ts';
import { toActivityFailure } from './failures.ts';

type AsyncFns = Record<string, (...args: never[]) => Promise<unknown>>;

/** Wraps every activity of a set so it is refused while the kill switch is on. */
export function guarded<T extends AsyncFns>(activities: T, killSwitch: KillSwitch): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [
      name,
      async (...args: never[]) => {
        await guard(killSwitch, name);
        return fn(...args);
      },
    ]),
  ) as T;
}

/** The kill switch's refusal, as the failure workflows wait on. */
export async function guard(killSwitch: KillSwitch | undefined, what: string): Promise<void> {
  try {
    await killSwitch?.guard(what);
  } catch (err) {
    throw toActivityFailure(err);
  }
}

import { sleep } from '../../infra/processes.ts';

/** Polls until `ready` holds, or fails after `ms` naming what it waited for. */
export async function until(what: string, ready: () => boolean | Promise<boolean>, ms = 90_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(everyMs);
  }
}

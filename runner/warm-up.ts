import { frameSchema } from './frames.ts';
import { checkOutput } from './judge.ts';
import { jobMessageSchema } from './protocol.ts';

/**
 * What a job's first moments would otherwise spend compiling, done while the container waits for
 * its job (off the job's clock, before READY): V8 compiles a function the first time it runs, and
 * zod's parsing code is a lot of functions — each of a verification's two jobs spent 4–8 ms parsing
 * its job message. Only Forge's own code and data run here; no job exists yet. The judged
 * process warms itself likewise (judged-warm-up.ts).
 */

/** The judge: the job message, a report of each kind, an output checked against a schema. */
export function warmJudge(): void {
  try {
    jobMessageSchema.safeParse({
      mode: 'test',
      files: { 'warm.mjs': 'export {};' },
      entry: 'warm.mjs',
      env: { WARM: '1' },
      limits: { timeoutMs: 1000 },
      nonce: 'a'.repeat(48),
      outputBytes: 1024,
      declaredTests: { tests: [{ path: [], name: 'warm' }], dynamic: 0 },
    });
    for (const frame of [
      { k: 'event', type: 'pass', name: 'warm', nesting: 0, suite: false, skip: false, todo: false, ms: 1 },
      { k: 'done', tampered: [] },
      { k: 'case', i: 0, ok: true, output: { n: 1 }, tampered: [] },
    ])
      frameSchema.safeParse(frame);
    const schema = { type: 'object', properties: { n: { type: 'integer', minimum: 0 } }, required: ['n'], additionalProperties: false };
    checkOutput({ n: 1 }, schema, 'warm');
  } catch {
    // Warming is an optimisation: whatever it met, the job itself reports.
  }
}

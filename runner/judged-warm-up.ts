/**
 * The judged process's warm-up, while the container waits for its job (before its hello, off the
 * job's clock): the image's zod as a tool uses it — building a schema, parsing, JSON Schema both
 * ways — and, where tests may run (not on an egress network), the test runner's modules. V8
 * compiles a function the first time it runs: a process's first toJSONSchema took ~6 ms, loading
 * node:test ~8 ms, on every job. Only Forge's own code and data run here, before any judged code
 * exists; `imageZod` is the module every tool and test bundle imports, so the code compiled is the
 * code they then run.
 */
type Zod = typeof import('zod').z;

export async function warmJudged(imageZod: { z?: Zod } | undefined, opts: { tests: boolean }): Promise<void> {
  try {
    const zz = imageZod?.z;
    if (zz) {
      const input = zz.object({
        text: zz.string().min(1).describe('warm'),
        count: zz.number().int().positive().optional(),
        tags: zz.array(zz.enum(['a', 'b'])).default([]),
        when: zz.iso.datetime().optional(),
      });
      const output = zz.object({ ok: zz.boolean(), items: zz.array(zz.object({ id: zz.string(), n: zz.number() })) });
      input.safeParse({ text: 'warm', count: 2, tags: ['a'] });
      input.safeParse({ text: '' });
      output.safeParse({ ok: true, items: [{ id: 'a', n: 1 }] });
      input.toJSONSchema({ io: 'input', unrepresentable: 'any' });
      output.toJSONSchema({ io: 'output', unrepresentable: 'any' });
    }
    if (!opts.tests) return;
    // node:test sets nothing up until a test is declared: loading it only compiles it.
    await import('node:test');
    await import('node:assert/strict');
  } catch {
    // An optimisation only: whatever it met, the job itself reports.
  }
}

import { type CheckCase, checksReportSchema } from '../../../domain/forge-checks.ts';
import { seedFrom } from '../../../domain/input-gen.ts';
import type { ApiSpec } from '../../../domain/tool.ts';
import { coverageOf, type StageResult, type TestOutcome } from '../../../domain/verification.ts';
import { bundleTool, ToolBundleError } from '../bundle.ts';
import type { SandboxBackend, SandboxLimits } from '../types.ts';
import type { StaticManifest } from './static.ts';

/**
 * Stage 3 (forge-checks): Forge's own checks, which do not depend on the tests the model wrote.
 * One judged job in a sandbox container with no network (runner/checks.ts): inputs generated from
 * the tool's input schema, edge values included, each must give output that fits the output schema
 * or a clean error; and for a tool with an API spec, the testkit's mock injects the contract's API
 * failures (429 with Retry-After, 5xx, timeouts, malformed JSON) and the judge checks the tool
 * waits, retries a bounded number of times and fails with a clear error. The runner computes every
 * verdict; this stage only turns its report into the stage's result.
 */
export interface ChecksInput {
  source: string;
  apiSpec?: ApiSpec;
  /** from the static stage: the name seeds the random inputs, so a repair meets the same ones */
  manifest: StaticManifest | null;
  /** the generated inputs' seed (default: from the tool's name) */
  seed?: number;
  limits?: Partial<SandboxLimits>;
  /** the tool's bundle, when the caller built it already (bench/verify.ts: the old path's, zod inlined) */
  bundle?: Promise<string>;
  /** aborting kills the checks' run (verifyTool does when an earlier stage, running alongside, fails) */
  signal?: AbortSignal;
}

/** Describing, up to 7 inputs of 5 s each and the fault checks' 10 s together: generous for a tool that behaves. */
const JOB_TIMEOUT_MS = 60_000;
/**
 * A whole CPU, not the sandbox's default half. The checks are CPU work from end to end — the tool
 * loaded twice (to describe it, then fresh for the cases), the cases, the judge's verdicts — and a
 * half-CPU quota doubled each of them (profiled: ~0.4 s of judged processes against ~0.17 s with
 * one CPU, when the second process still booted during the job; it now boots while the container
 * waits, runner/main.ts). CPU is a share, not a boundary: every limit that contains the code (no
 * network, read-only root, no capabilities, memory, pids, Node's permission model) is the default's,
 * and what a tool can burn is still bounded by the judge (a case past its budget stops the process)
 * and the job's timeout. The warm pool serves it (pool.ts raises a taken container's quota).
 * offlineStages gives the tests, which run beside the checks, the same.
 */
export const CHECKS_CPUS = 1;

function toOutcome(c: CheckCase): TestOutcome {
  return {
    name: c.name,
    passed: c.passed,
    durationMs: c.durationMs,
    ...(c.passed ? {} : { error: `with input ${c.input}: ${c.detail ?? 'failed'}` }),
  };
}

export async function forgeChecksStage(input: ChecksInput, sandbox: SandboxBackend): Promise<StageResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let code: string;
  try {
    code = await (input.bundle ?? bundleTool(input.source));
  } catch (err) {
    if (err instanceof ToolBundleError)
      return { stage: 'forge-checks', status: 'failed', reason: err.message, findings: err.findings, durationMs: elapsed() };
    throw err;
  }
  // Cancelled while the bundle was built: no container is taken for a run nobody waits for.
  input.signal?.throwIfAborted();
  const result = await sandbox.runJob(
    {
      mode: 'checks',
      files: { 'tool.mjs': code },
      entry: 'tool.mjs',
      ...(input.apiSpec ? { apiSpec: input.apiSpec } : {}),
      seed: input.seed ?? seedFrom(input.manifest?.name ?? input.source),
      // No `network`: NetworkMode none; the API is the testkit's mock inside the judged process.
      limits: { timeoutMs: JOB_TIMEOUT_MS, cpus: CHECKS_CPUS, ...input.limits },
    },
    input.signal ? { signal: input.signal } : {},
  );
  const parsed = checksReportSchema.safeParse(result.output);
  const why = result.error?.message ?? result.reason ?? 'the checks failed';
  if (!parsed.success) {
    // No report: the tool could not be loaded or described, or the job broke a limit.
    const code = result.error?.code ? `${result.error.code}: ` : '';
    return { stage: 'forge-checks', status: 'failed', reason: `Forge's own checks could not run: ${code}${why}`, durationMs: elapsed() };
  }
  const tests = parsed.data.cases.map(toOutcome);
  const coverage = coverageOf(tests);
  const base = { tests, ...(coverage !== undefined ? { coverage } : {}) };
  const note = parsed.data.problem ? ` (${parsed.data.problem})` : '';
  if (!result.ok) return { stage: 'forge-checks', status: 'failed', reason: `${why}${note}`, ...base, durationMs: elapsed() };
  return { stage: 'forge-checks', status: 'passed', ...base, durationMs: elapsed() };
}

import type { ApiSpec } from '../../../domain/tool.ts';
import { coverageOf, type StageResult, type TestOutcome } from '../../../domain/verification.ts';
import { type TestCase, testReportSchema } from '../../../runner/protocol.ts';
import { bundleTests, ToolBundleError } from '../bundle.ts';
import type { SandboxBackend, SandboxLimits } from '../types.ts';
import { declaredTests } from './declared-tests.ts';

/**
 * Stage 2: run the tool's own tests in a sandbox container with no network at all. The
 * tests reach "the API" only through the testkit's in-process mock (runner/testkit.ts),
 * built from api-spec.json, with injected faults (429, 5xx, timeouts, bad payloads).
 *
 * The verdict is the runner's (the judge outside the test process, runner/test-mode.ts), held to
 * the tests this stage read in tool.test.ts's source: a suite that exits early, reports a test the
 * file does not declare, or leaves a declared test unrun fails, whatever the test process says.
 */
export interface MockInput {
  source: string;
  tests: string;
  apiSpec?: ApiSpec;
  /** defaults: 60 s for the whole suite, the sandbox's default memory/cpu */
  limits?: Partial<SandboxLimits>;
  /** the tests' bundle, when the caller started building it already */
  bundle?: Promise<string>;
  /** aborting kills the test run (verifyTool does when the static stage, running alongside, fails) */
  signal?: AbortSignal;
}

const SUITE_TIMEOUT_MS = 60_000;
const ENTRY = 'tool.test.mjs';

function testName(t: TestCase): string {
  return [...t.path, t.name].join(' > ');
}

function toOutcome(t: TestCase): TestOutcome {
  if (t.skipped) {
    // A skipped test proves nothing; the repair loop must not be able to pass by skipping.
    return { name: testName(t), passed: false, durationMs: t.durationMs, error: 'skipped (test.skip/todo): every test must run' };
  }
  return { name: testName(t), passed: t.pass, durationMs: t.durationMs, ...(t.error !== undefined ? { error: t.error } : {}) };
}

function failed(reason: string, started: number, extra: Partial<StageResult> = {}): StageResult {
  return { stage: 'mock', status: 'failed', reason, ...extra, durationMs: Math.round(performance.now() - started) };
}

export async function mockStage(input: MockInput, sandbox: SandboxBackend): Promise<StageResult> {
  const started = performance.now();
  const building = input.bundle ?? bundleTests(input);
  // Read while esbuild builds the bundle in its own process: the parse is this thread's, the build is not.
  const declared = declaredTests(input.tests);
  let bundle: string;
  try {
    bundle = await building;
  } catch (err) {
    if (err instanceof ToolBundleError) return failed(err.message, started, { findings: err.findings });
    throw err;
  }
  // Cancelled while the bundle was built: no container is taken for a run nobody waits for.
  input.signal?.throwIfAborted();
  const result = await sandbox.runJob(
    {
      mode: 'test',
      files: { [ENTRY]: bundle },
      entry: ENTRY,
      declaredTests: declared,
      // No `network`: the container gets NetworkMode none; the mock API lives inside the test process.
      limits: { timeoutMs: SUITE_TIMEOUT_MS, ...input.limits },
    },
    input.signal ? { signal: input.signal } : {},
  );
  const report = testReportSchema.safeParse(result.output);
  if (!report.success) {
    // No report: the suite crashed, hung or broke a limit before the runner could summarise it.
    const detail = result.reason ?? result.error?.message ?? 'the test runner produced no report';
    const stderr = result.stderr.trim().split('\n').slice(-5).join('\n');
    return failed(`the test suite did not complete: ${detail}${stderr ? `\n${stderr}` : ''}`, started);
  }
  const tests = report.data.tests.map(toOutcome);
  const coverage = coverageOf(tests);
  const failing = tests.filter((t) => !t.passed);
  const base = { tests, ...(coverage !== undefined ? { coverage } : {}) };
  const code = result.error?.code;
  if (!result.ok && code !== 'TESTS_FAILED' && code !== 'NO_TESTS') {
    // The judge's own finding (an early exit, an undeclared or unrun test, a limit): it decides.
    const detail = result.reason ?? result.error?.message ?? 'the test run failed';
    return failed(`the test suite did not complete as declared: ${detail}`, started, base);
  }
  if (tests.length === 0) return failed('tool.test.ts defined no tests that ran', started, base);
  if (failing.length > 0) {
    return failed(`${failing.length} of ${tests.length} tests failed: ${failing.map((t) => t.name).join(', ')}`, started, base);
  }
  if (!result.ok) return failed(result.reason ?? 'the test run failed', started, base);
  return { stage: 'mock', status: 'passed', ...base, durationMs: Math.round(performance.now() - started) };
}

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidInputError } from '../../../domain/errors.ts';
import { type ApiSpec, apiSpecSchema } from '../../../domain/tool.ts';
import { type Finding, reportPassed, type StageName, type StageResult, type VerifyReport } from '../../../domain/verification.ts';
import type { SandboxBackend } from '../types.ts';
import { CHECKS_CPUS, forgeChecksStage } from './checks.ts';
import { type LiveOptions, liveStage } from './live.ts';
import { mockStage } from './mock.ts';
import { readManifestSource, type StaticAnalysis, type StaticManifest } from './static.ts';
import { analyzeStaticOffThread, StaticCheckTimeoutError } from './static-thread.ts';

export type { Finding, StageResult, VerifyReport } from '../../../domain/verification.ts';
/**
 * The verification pipeline a forged tool goes through before it may be registered:
 * static (compile, type-check, rules) → mock (its tests in a no-network sandbox against a
 * mock of its API) → forge-checks (Forge's own calls: generated inputs and injected API
 * failures, whatever its tests say) → live (one real read through the egress proxy, when that
 * is safe). A failing stage stops the pipeline; later stages are reported as not run.
 */
export { formatForRepair } from '../../../domain/verification.ts';
export { type ChecksInput, forgeChecksStage } from './checks.ts';
export { type Egress, openEgress, reapEgress } from './egress.ts';
export { type LiveInput, type LiveOptions, liveSkipReason, liveStage } from './live.ts';
export { type MockInput, mockStage } from './mock.ts';
export { analyzeStatic, readManifestSource, type StaticInput, type StaticManifest, staticCheck } from './static.ts';
export { analyzeStaticOffThread, stopStaticThread, warmStaticChecker } from './static-thread.ts';

export const TOOL_FILE = 'tool.ts';
export const TESTS_FILE = 'tool.test.ts';
export const API_SPEC_FILE = 'api-spec.json';

export type VerifyInput = ({ dir: string } | { files: Record<string, string> }) & {
  /** the name the tool is registered under; manifest.name must match */
  manifestName?: string;
  /** Docker handle and image for the live stage; without it the live stage is skipped */
  live?: LiveOptions | false;
  /** real values for declared env vars, used only by the live call */
  secrets?: Record<string, string>;
  liveInput?: unknown;
  /** how long the type check may take (STATIC_CHECK_DEADLINE_MS when absent); past it the static stage fails */
  staticDeadlineMs?: number;
};

export interface ToolSources {
  source?: string;
  tests?: string;
  apiSpec?: ApiSpec;
  /** problems with the files themselves (missing, unparsable spec) */
  problems: Finding[];
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function loadFiles(input: VerifyInput): Promise<Record<string, string | undefined>> {
  if ('files' in input) return input.files;
  const dir = path.resolve(input.dir);
  const names = [TOOL_FILE, TESTS_FILE, API_SPEC_FILE];
  const contents = await Promise.all(names.map((n) => readOptional(path.join(dir, n))));
  if (contents.every((c) => c === undefined)) {
    throw new InvalidInputError('tool directory', `${dir} has none of ${names.join(', ')}`);
  }
  return Object.fromEntries(names.map((n, i) => [n, contents[i]]));
}

const whole = (file: Finding['file'], rule: string, message: string): Finding => ({ rule, message, file, line: 0, column: 0, snippet: '' });

function parseApiSpec(text: string): { spec?: ApiSpec; problem?: Finding } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { problem: whole('api-spec.json', 'api-spec', `api-spec.json is not valid JSON: ${(err as Error).message}`) };
  }
  const parsed = apiSpecSchema.safeParse(raw);
  if (parsed.success) return { spec: parsed.data };
  const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  return { problem: whole('api-spec.json', 'api-spec', `api-spec.json does not match the ApiSpec schema: ${issues}`) };
}

async function sources(input: VerifyInput): Promise<ToolSources> {
  const files = await loadFiles(input);
  const problems: Finding[] = [];
  const source = files[TOOL_FILE];
  const tests = files[TESTS_FILE];
  if (source === undefined) problems.push(whole('tool.ts', 'contract', 'tool.ts is missing: it must export `manifest` and `run`'));
  if (tests === undefined)
    problems.push(whole('tool.test.ts', 'tests', 'tool.test.ts is missing: every tool ships node:test tests that use @forge/testkit'));
  let apiSpec: ApiSpec | undefined;
  const specText = files[API_SPEC_FILE];
  if (specText !== undefined) {
    const { spec, problem } = parseApiSpec(specText);
    apiSpec = spec;
    if (problem) problems.push(problem);
  }
  return { source, tests, apiSpec, problems };
}

/** A promise whose rejection is handled now and rethrown where it is awaited (not an unhandled rejection meanwhile). */
function settle<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** Stops a run an earlier stage's failure made moot, and waits until its container is let go. */
async function cancel(controller: AbortController, run: Promise<StageResult> | undefined): Promise<void> {
  controller.abort();
  await run?.catch(() => undefined);
}

function notRun(stage: StageName, after: StageName): StageResult {
  return { stage, status: 'skipped', reason: `not run: the ${after} stage failed`, durationMs: 0 };
}

function withProblems(result: StageResult, problems: Finding[]): StageResult {
  if (!problems.length) return result;
  const findings = [...problems, ...(result.findings ?? [])];
  const rules = [...new Set(findings.map((f) => f.rule))];
  return {
    ...result,
    status: 'failed',
    reason: `${findings.length} finding${findings.length > 1 ? 's' : ''} (${rules.join(', ')})`,
    findings,
  };
}

/** The stages before live, as far as they count: each only when the one before it passed. */
export interface OfflineStages {
  static: StageResult;
  /** only when the static stage passed */
  mock?: StageResult;
  /** forge-checks, only when the mock stage passed */
  checks?: StageResult;
  manifest: StaticManifest | null;
}

/**
 * Stages 1 to 3, static, mock and forge-checks, as verifyTool runs them (bench/verify.ts times
 * this). The tests and Forge's own checks run while the static stage type-checks, each in its own
 * sandbox container: no network, no env, Node's permission model, no code from strings,
 * memory/pid/cpu/time limits — what the static rules refuse (fetch, process.env, child_process,
 * eval…) is refused there at run time too, so starting them early gives the code nothing the rules
 * would have kept from it, and neither waits for the type-check nor for the other (for a small
 * tool, a few hundred ms each; the checks, with two judged processes, are the longer). The order
 * of the verdicts is still the sequential one: the static stage decides first, then the mock
 * stage; a failure cancels what runs after it, whose result, whatever it was, is never read, so
 * the report is the one the sequential order gave ("not run").
 * The checks' inputs are seeded by the manifest's name, read here from the source alone by the
 * same parser the static stage uses (readManifestSource), so they are the ones a sequential run
 * generates. Live, the stage with a network, starts only after all three passed. Files already
 * known to be wrong (an unparsable api-spec.json) fail the static stage for sure: nothing runs then.
 */
export async function offlineStages(
  files: ToolSources & { manifestName?: string; staticDeadlineMs?: number },
  sandbox: SandboxBackend,
): Promise<OfflineStages> {
  const { source, tests, apiSpec, problems, manifestName, staticDeadlineMs } = files;
  const staticStarted = performance.now();
  const cancelTests = new AbortController();
  const cancelChecks = new AbortController();
  const runnable = source !== undefined && tests !== undefined && problems.length === 0;
  // The tests get the checks' whole CPU too (CHECKS_CPUS says why that is safe): side by side, the
  // slower of the two runs is what the verification waits for, and on half a CPU loading the tests'
  // bundle would be.
  const mock = runnable
    ? settle(
        mockStage({ source, tests, ...(apiSpec ? { apiSpec } : {}), limits: { cpus: CHECKS_CPUS }, signal: cancelTests.signal }, sandbox),
      )
    : undefined;
  const checks = runnable
    ? settle(
        forgeChecksStage(
          { source, ...(apiSpec ? { apiSpec } : {}), manifest: readManifestSource(source).manifest, signal: cancelChecks.signal },
          sandbox,
        ),
      )
    : undefined;
  const cancelBoth = () => Promise.all([cancel(cancelTests, mock), cancel(cancelChecks, checks)]);
  let analysis: StaticAnalysis;
  try {
    analysis =
      source === undefined
        ? { result: { stage: 'static' as const, status: 'failed' as const, findings: [], durationMs: 0 }, manifest: null }
        : await analyzeStaticOffThread(
            {
              source,
              ...(tests !== undefined ? { tests } : {}),
              ...(apiSpec ? { apiSpec } : {}),
              ...(manifestName ? { manifestName } : {}),
            },
            staticDeadlineMs,
          );
  } catch (err) {
    if (!(err instanceof StaticCheckTimeoutError)) {
      await cancelBoth();
      throw err;
    }
    analysis = { result: { stage: 'static', status: 'failed', findings: [tooSlowToCheck(err)], durationMs: 0 }, manifest: null };
  }
  const { manifest } = analysis;
  const staticResult = { ...withProblems(analysis.result, problems), durationMs: Math.round(performance.now() - staticStarted) };
  if (staticResult.status === 'failed' || !mock || !checks) {
    await cancelBoth();
    return { static: staticResult, manifest };
  }
  let mockResult: StageResult;
  try {
    mockResult = await mock;
  } catch (err) {
    await cancel(cancelChecks, checks);
    throw err;
  }
  if (mockResult.status === 'failed') {
    await cancel(cancelChecks, checks);
    return { static: staticResult, mock: mockResult, manifest };
  }
  return { static: staticResult, mock: mockResult, checks: await checks, manifest };
}

/** The verdict on types that do not finish checking: the code's to fix, as any other finding. */
function tooSlowToCheck(err: StaticCheckTimeoutError): Finding {
  return {
    rule: 'type-check-deadline',
    message: `${err.message}: simplify the types (no deeply recursive or exploding generic types; plain object types and zod schemas check in well under a second)`,
    file: 'tool.ts',
    line: 0,
    column: 0,
    snippet: '',
  };
}

export async function verifyTool(input: VerifyInput, sandbox: SandboxBackend): Promise<VerifyReport> {
  const files = await sources(input);
  const { source, apiSpec } = files;
  const { manifestName, staticDeadlineMs } = input;
  const first = await offlineStages({ ...files, manifestName, staticDeadlineMs }, sandbox);
  const stages: StageResult[] = [first.static];
  if (!first.mock || source === undefined) {
    stages.push(notRun('mock', 'static'), notRun('forge-checks', 'static'), notRun('live', 'static'));
    return { passed: false, stages };
  }
  stages.push(first.mock);
  if (!first.checks) {
    stages.push(notRun('forge-checks', 'mock'), notRun('live', 'mock'));
    return { passed: false, stages };
  }
  stages.push(first.checks);
  if (first.checks.status === 'failed') {
    stages.push(notRun('live', 'forge-checks'));
    return { passed: false, stages };
  }

  const live = input.live
    ? await liveStage(
        { source, apiSpec, manifest: first.manifest, secrets: input.secrets, liveInput: input.liveInput },
        sandbox,
        input.live,
      )
    : { stage: 'live' as const, status: 'skipped' as const, reason: 'live smoke disabled for this run', durationMs: 0 };
  stages.push(live);
  return { passed: reportPassed(stages), stages };
}

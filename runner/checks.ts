import {
  type CaseOutcome,
  type CheckCase,
  type ChecksReport,
  FAULT_CASE_MS,
  FAULT_CHECKS,
  type FaultCheck,
  INPUT_CASE_MS,
  judgeFaultCase,
  judgeInputCase,
  MAX_FAULT_REQUESTS,
  type ObservedRequest,
} from '../domain/forge-checks.ts';
import { DEFAULT_MAX_INPUTS, describeInput, generateInputs } from '../domain/input-gen.ts';
import type { ApiSpec, Permissions, SideEffect } from '../domain/tool.ts';
import type { ChildCase } from './channel.ts';
import type { CaseFrame, Frame, LoadedFrame } from './frames.ts';
import { checkOutput, clip, howItEnded, type JudgedProcess, judgeCall, type Session, stderrTail, tamperedError } from './judge.ts';
import type { LogEntry, RunnerError, RunnerResult } from './protocol.ts';

/**
 * Checks mode, the judge's side: Forge's own calls of a tool (the forge-checks verification stage),
 * whatever the tool's own tests say. Two judged processes:
 *
 *  1. the warm one (started with the container) describes the tool: its input and output JSON
 *     Schemas, read as it loaded;
 *  2. the judge makes the cases in its own realm — inputs generated from the input schema
 *     (domain/input-gen.ts), and, for a tool with an API spec, the contract's API failures
 *     (domain/forge-checks.ts) — and a second process runs them all, reading them with its job
 *     before any judged code exists (so no judged code can see or change them on the way).
 *
 * The second process is the container's spare, started while it waited for its job (main.ts): booting
 * node is about as long as loading the tool, and it is off the job's clock. It only waits meanwhile —
 * it holds no job and loads no judged code until the cases are made — so it is as fresh as one
 * started afterwards, and it never shares anything with the describing process (a separate
 * process, killed once it has described).
 *
 * The verdicts are the judge's: each output is checked against the output schema here, each fault
 * check is judged from the mock's answers as they were reported, timed by this process's clock.
 */
export interface ChecksJob {
  entry: string;
  seed: number;
  apiSpec?: ApiSpec;
  permissions?: Permissions;
  sideEffect?: SideEffect;
  /** the whole job: describing, then every case */
  timeoutMs: number;
  outputBytes: number;
  maxInputs?: number;
}

interface PlannedCase extends ChildCase {
  name: string;
  kind: 'input' | 'fault';
  check?: FaultCheck;
}

const DESCRIBE_MS = 15_000;
/** Past its budget by this much, a case that has not ended is one that cannot: the judge stops the process. */
const CASE_GRACE_MS = 1000;

/** Stand-ins for the declared secrets: the mock API checks the tool sends them where its spec says. */
export function checkEnv(names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.map((n) => [n, `forge-check-${n.toLowerCase().replace(/_/g, '-')}`]));
}

/** The cases for a described tool: generated inputs (sequential), then the fault checks on the first input (together). */
export function planCases(input: Record<string, unknown>, job: Pick<ChecksJob, 'seed' | 'apiSpec' | 'maxInputs'>): PlannedCase[] {
  const inputs = generateInputs(input, { seed: job.seed, max: job.maxInputs ?? DEFAULT_MAX_INPUTS });
  const cases: PlannedCase[] = inputs.map((g, i) => ({
    i,
    name: `input: ${g.name}`,
    kind: 'input',
    input: g.input,
    budgetMs: INPUT_CASE_MS,
  }));
  if (job.apiSpec && inputs.length) {
    for (const check of FAULT_CHECKS) {
      cases.push({
        i: cases.length,
        name: `fault: ${check.name}`,
        kind: 'fault',
        check,
        input: inputs[0]!.input,
        budgetMs: FAULT_CASE_MS,
        fault: check.fault,
        maxRequests: MAX_FAULT_REQUESTS,
        parallel: true,
      });
    }
  }
  return cases;
}

/** What the judge saw of each case, as the frames arrived. */
interface Seen {
  began: Map<number, number>;
  ended: Map<number, { frame: CaseFrame; at: number }>;
  requests: Map<number, ObservedRequest[]>;
  over: Set<number>;
}

function observe(seen: Seen, f: Frame, at: number): void {
  if (f.k === 'begin') seen.began.set(f.i, at);
  else if (f.k === 'case' && !seen.ended.has(f.i)) seen.ended.set(f.i, { frame: f, at });
  else if (f.k === 'request') {
    if (f.over) seen.over.add(f.i);
    else {
      const list = seen.requests.get(f.i) ?? [];
      list.push({ atMs: at, method: f.method, status: f.status, ...(f.fault ? { fault: f.fault } : {}) });
      seen.requests.set(f.i, list);
    }
  }
}

function outcomeOf(c: PlannedCase, seen: Seen, loaded: LoadedFrame): CaseOutcome {
  const ended = seen.ended.get(c.i)!.frame;
  const base = { budgetMs: c.budgetMs, requests: seen.requests.get(c.i) ?? [], ...(seen.over.has(c.i) ? { overLimit: true } : {}) };
  if (!ended.ok) {
    const error = ended.error ?? { code: 'TOOL_FAILED', message: 'the call failed without saying why' };
    const name = typeof error.name === 'string' ? error.name : undefined;
    return { ...base, ok: false, error: { code: error.code, message: error.message, ...(name ? { name } : {}) } };
  }
  // The verdict on the output is the judge's: against the schema the tool declared when it loaded.
  const problem = checkOutput(ended.output, loaded.schemas.output, loaded.name);
  if (problem) return { ...base, ok: false, error: { code: problem.code, message: problem.message } };
  return { ...base, ok: true, outputJson: JSON.stringify(ended.output) ?? 'null' };
}

function reportCase(c: PlannedCase, passed: boolean, detail: string | undefined, durationMs: number, requests?: number): CheckCase {
  return {
    name: c.name,
    kind: c.kind,
    input: describeInput(c.input),
    passed,
    ...(detail ? { detail: detail.slice(0, 1500) } : {}),
    durationMs: Math.max(0, Math.round(durationMs)),
    ...(requests !== undefined ? { requests } : {}),
  };
}

function summary(failed: CheckCase[], total: number): string {
  const first = failed
    .slice(0, 3)
    .map((c) => `${c.name} ${c.input} → ${c.detail ?? 'failed'}`)
    .join('; ');
  return `${failed.length} of ${total} of Forge's own checks failed: ${first}${failed.length > 3 ? '; …' : ''}`;
}

export async function judgeChecks(first: JudgedProcess, second: JudgedProcess, job: ChecksJob): Promise<RunnerResult> {
  // `second` gets its job (and loads the tool) only once the cases are made. Unused (the tool
  // could not be described), it is killed.
  try {
    return await describeThenCheck(first, second, job);
  } finally {
    second.kill();
  }
}

async function describeThenCheck(first: JudgedProcess, judged: JudgedProcess, job: ChecksJob): Promise<RunnerResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const remaining = () => Math.max(1000, job.timeoutMs - elapsed());
  const done = (ok: boolean, report: ChecksReport | undefined, error?: RunnerError, session?: Session): RunnerResult => ({
    ok,
    ...(report ? { output: report } : {}),
    ...(error ? { error: clip(error) } : {}),
    durationMs: elapsed(),
    logs: [] as LogEntry[],
    ...(session ? session.logs : {}),
  });
  const report = (cases: CheckCase[], problem?: string): ChecksReport => ({ seed: job.seed, cases, ...(problem ? { problem } : {}) });

  // 1. What the tool takes and returns, from the warm process.
  const described = await judgeCall(first, {
    mode: 'describe',
    entry: job.entry,
    env: {},
    timeoutMs: Math.min(DESCRIBE_MS, remaining()),
    outputBytes: job.outputBytes,
  });
  if (!described.ok || !described.loaded) {
    return { ...described, durationMs: elapsed(), ...(described.error ? { error: clip(described.error) } : {}) };
  }
  const schemas = described.loaded.schemas;
  if (!schemas.input || !schemas.output) {
    const which = !schemas.input ? 'input' : 'output';
    return done(false, undefined, {
      code: 'SCHEMA_UNREADABLE',
      message: `${described.loaded.name}'s manifest.${which} could not be read as JSON Schema, so Forge can neither make inputs for it nor check its output`,
      fix: 'declare manifest.input and manifest.output with zod',
    });
  }

  // 2. The cases, made here.
  const cases = planCases(schemas.input, job);
  if (!cases.length) {
    return done(false, report([], 'no input could be made from manifest.input'), {
      code: 'NO_INPUT',
      message: `Forge could not make any input valid against ${described.loaded.name}'s manifest.input (a pattern or format it cannot fill), so nothing could be checked`,
      fix: 'add an example: manifest.input = z.object({ ... }).meta({ examples: [{ ... }] })',
    });
  }
  const permissions = job.permissions ?? described.loaded.permissions;
  const seen: Seen = { began: new Map(), ended: new Map(), requests: new Map(), over: new Set() };
  // A call that never gives the event loop back (a loop that does not end on some input) cannot
  // time itself out: the judge stops the process once a case is past its budget, and says which.
  let overrun: PlannedCase | undefined;
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const [i, at] of seen.began) {
      const c = cases[i];
      if (c && !seen.ended.has(i) && now - at > c.budgetMs + CASE_GRACE_MS) {
        overrun = c;
        judged.kill();
        return;
      }
    }
  }, 200);
  const session = await judged
    .run(
      {
        mode: 'checks',
        entry: job.entry,
        env: checkEnv(permissions.env),
        permissions,
        ...(job.sideEffect ? { sideEffect: job.sideEffect } : {}),
        timeoutMs: remaining(),
        ...(job.apiSpec ? { apiSpec: job.apiSpec } : {}),
        cases: cases.map(({ name: _n, kind: _k, check: _c, ...child }) => child),
      },
      {
        timeoutMs: remaining(),
        outputBytes: job.outputBytes,
        decide: (f) => {
          observe(seen, f, performance.now());
          return f.k === 'done' || f.k === 'error' || (f.k === 'loaded' && (f.tampered.length > 0 || !f.schemas.output));
        },
      },
    )
    .finally(() => clearInterval(watchdog));

  // 3. The verdicts.
  const loadError = session.frames.find((f) => f.k === 'error');
  const loaded = session.frames.find((f): f is LoadedFrame => f.k === 'loaded');
  if (loadError?.k === 'error') return done(false, undefined, loadError.error, session);
  if (!loaded) {
    const why = session.stop ?? {
      code: 'EXITED_EARLY',
      message: `the tool's process ${session.exit ? howItEnded(session.exit) : 'ended'} before it loaded the tool${stderrTail(session)}`,
    };
    return done(false, undefined, why, session);
  }
  if (loaded.tampered.length) return done(false, undefined, tamperedError('the tool, while it loaded,', loaded.tampered), session);
  if (JSON.stringify(loaded.schemas) !== JSON.stringify(schemas)) {
    return done(
      false,
      undefined,
      {
        code: 'SCHEMAS_CHANGED',
        message: `${loaded.name}'s schemas were not the same when it loaded a second time; Forge cannot tell which the tool has`,
        fix: 'declare manifest.input and manifest.output as fixed zod schemas',
      },
      session,
    );
  }
  const tampered = session.frames.flatMap((f) => (f.k === 'case' || f.k === 'done' ? f.tampered : []));
  if (tampered.length) return done(false, undefined, tamperedError(`${loaded.name}, while Forge's checks ran,`, tampered), session);

  const endedEarly = !session.stop && !session.frames.some((f) => f.k === 'done');
  const hung: RunnerError | undefined = overrun && {
    code: 'TIMEOUT',
    message: `the call with input ${describeInput(overrun.input)} did not finish within ${overrun.budgetMs} ms and never gave the process back (a loop that does not end?); the judge stopped it`,
    fix: 'make every loop end for every valid input, and bound every wait',
  };
  const interrupted: RunnerError | undefined =
    hung ??
    session.stop ??
    (endedEarly
      ? {
          code: 'EXITED_EARLY',
          message: `the tool's process ${session.exit ? howItEnded(session.exit) : 'ended'} before Forge's checks finished${stderrTail(session)}`,
          fix: 'return or throw from run(); do not call process.exit, and do not let the process crash',
        }
      : undefined);
  const baselineCase = cases[0]!;
  const baselineEnd = seen.ended.has(baselineCase.i) ? outcomeOf(baselineCase, seen, loaded) : undefined;
  const baseline = { ok: baselineEnd?.ok ?? false, ...(baselineEnd?.outputJson ? { outputJson: baselineEnd.outputJson } : {}) };
  const results: CheckCase[] = [];
  let notRun = 0;
  for (const c of cases) {
    const began = seen.began.get(c.i);
    const ended = seen.ended.get(c.i);
    if (began === undefined) {
      notRun += 1;
      continue;
    }
    const requests = c.kind === 'fault' ? (seen.requests.get(c.i)?.length ?? 0) : undefined;
    if (!ended) {
      // Running when the process was stopped or died: that is what this case did (or what it was caught in).
      const why =
        c === overrun
          ? `it did not finish within ${c.budgetMs} ms and never gave the process back (a loop that does not end on this input?): the judge stopped it`
          : `the call did not end: ${interrupted ? `${interrupted.code}: ${interrupted.message}` : 'it never reported how the call ended'}`;
      results.push(reportCase(c, false, why, performance.now() - began, requests));
      continue;
    }
    const outcome = outcomeOf(c, seen, loaded);
    const verdict = c.kind === 'fault' && c.check ? judgeFaultCase(c.check, outcome, baseline) : judgeInputCase(outcome);
    results.push(reportCase(c, verdict.passed, verdict.detail, ended.at - began, requests));
  }
  const problem = notRun
    ? `${notRun} more case${notRun === 1 ? ' was' : 's were'} not run: an earlier one timed out or the process stopped`
    : undefined;
  const failed = results.filter((c) => !c.passed);
  if (interrupted) {
    const named = failed.length ? `; ${summary(failed, results.length)}` : '';
    return done(false, report(results, problem), { ...interrupted, message: `${interrupted.message}${named}` }, session);
  }
  if (failed.length) {
    return done(
      false,
      report(results, problem),
      {
        code: 'CHECKS_FAILED',
        message: summary(failed, results.length),
        fix: 'make the tool return output that fits its schema, or throw an Error that says what is wrong, for every valid input; handle the API failures as docs/tool-contract.md says',
      },
      session,
    );
  }
  return done(true, report(results, problem), undefined, session);
}

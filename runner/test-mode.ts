import path from 'node:path';
import type { Frame } from './frames.ts';
import { clip, howItEnded, type JudgedProcess, stderrTail, tamperedError } from './judge.ts';
import type { DeclaredTests, LogEntry, RunnerError, RunnerResult, TestCase, TestReport } from './protocol.ts';

/**
 * Test mode, the judge's side: a test file runs with node:test in a judged process (judged.ts
 * reports each test as it ends); the counts here are the judge's own. The file passes only when the
 * suite ended by itself (an early process.exit or a crash never reports "done"), every test the host
 * read in its source ran, no test the source does not declare was reported, and none failed.
 */
const MAX_TESTS = 500;

export interface TestJob {
  entry: string;
  env: Record<string, string>;
  timeoutMs: number;
  outputBytes: number;
  declaredTests?: DeclaredTests;
}

export function summarize(tests: TestCase[]): TestReport {
  const counted = tests.filter((t) => !t.skipped);
  const passed = counted.filter((t) => t.pass).length;
  return { tests, total: counted.length, passed, failed: counted.length - passed, coverage: counted.length ? passed / counted.length : 0 };
}

/** The tests as the judge saw them reported, one per pass/fail event of a test (suites are not tests). */
export function testsFrom(frames: Frame[]): TestCase[] {
  const stack: string[] = [];
  const tests: TestCase[] = [];
  for (const f of frames) {
    if (f.k !== 'event') continue;
    if (f.type === 'start') {
      stack.length = f.nesting;
      stack[f.nesting] = f.name;
      continue;
    }
    if (f.suite) continue;
    const pass = f.type === 'pass';
    tests.push({
      name: f.name,
      path: Array.from({ length: f.nesting }, (_, i) => stack[i] ?? ''),
      pass,
      skipped: f.skip || f.todo,
      durationMs: Math.round(f.ms),
      ...(pass ? {} : { error: (f.error ?? 'the test failed').slice(0, 2000) }),
    });
  }
  return tests;
}

const testKey = (t: { path: string[]; name: string }) => [...t.path, t.name].join(' > ');

function tally(list: Array<{ path: string[]; name: string }>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of list) counts.set(testKey(t), (counts.get(testKey(t)) ?? 0) + 1);
  return counts;
}

/** Declared tests that never reported, and reported tests the source does not declare. */
export function compareDeclared(tests: TestCase[], declared: DeclaredTests): { missing: string[]; undeclared: string[] } {
  const want = tally(declared.tests);
  const got = tally(tests);
  const missing = [...want].filter(([k, n]) => (got.get(k) ?? 0) < n).map(([k]) => k);
  // A test the source names only at run time (a loop, a computed name) cannot be told from an invented one.
  const undeclared = declared.dynamic > 0 ? [] : [...got].filter(([k, n]) => n > (want.get(k) ?? 0)).map(([k]) => k);
  return { missing, undeclared };
}

const list = (names: string[]) => names.slice(0, 10).join(', ') + (names.length > 10 ? `, … (${names.length} in all)` : '');

export async function judgeTest(judged: JudgedProcess, job: TestJob): Promise<RunnerResult> {
  const session = await judged.run(
    { mode: 'test', entry: job.entry, env: job.env, timeoutMs: job.timeoutMs },
    { timeoutMs: job.timeoutMs, outputBytes: job.outputBytes, decide: (f) => f.k === 'done' || f.k === 'error' },
  );
  const base = { durationMs: session.elapsedMs, logs: [] as LogEntry[], ...session.logs };
  let tests = testsFrom(session.frames);
  const verdict = (error?: RunnerError): RunnerResult => {
    const report = summarize(tests);
    return { ok: !error, output: report, ...base, ...(error ? { error: clip(error) } : {}) };
  };
  if (tests.length > MAX_TESTS) {
    tests = tests.slice(0, MAX_TESTS);
    return verdict({ code: 'PROTOCOL_VIOLATION', message: `the test process reported more than ${MAX_TESTS} tests` });
  }
  const declared = job.declaredTests;
  const missing = () => (declared ? compareDeclared(tests, declared).missing : []);
  const notRun = () => {
    const m = missing();
    return m.length ? `; declared tests that never reported: ${list(m)}` : '';
  };
  if (session.stop) return verdict({ ...session.stop, message: `${session.stop.message}${notRun()}` });
  const loadError = session.frames.find((f) => f.k === 'error');
  if (loadError?.k === 'error') {
    // As node:test reports a file that fails to load: the file itself is a failed test.
    tests.push({ name: path.basename(job.entry), path: [], pass: false, skipped: false, durationMs: 0, error: loadError.error.message });
    return verdict({ ...loadError.error, message: `${loadError.error.message}${stderrTail(session)}` });
  }
  const done = session.frames.find((f) => f.k === 'done');
  if (done?.k !== 'done') {
    return verdict({
      code: 'EXITED_EARLY',
      message: `the test process ${session.exit ? howItEnded(session.exit) : 'ended'} before its suite finished (after ${tests.length} test${tests.length === 1 ? '' : 's'})${notRun()}${stderrTail(session)}`,
      fix: 'let every test run to its end: no process.exit, no uncaught crash',
    });
  }
  if (done.tampered.length) return verdict(tamperedError('the test process', done.tampered));
  const never = declared ? compareDeclared(tests, declared).missing : [];
  // Only passes can be forged in one's favour: an undeclared failure (an uncaught error node:test
  // pins on the run) is a failure like any other.
  const undeclared = declared
    ? compareDeclared(
        tests.filter((t) => t.pass && !t.skipped),
        declared,
      ).undeclared
    : [];
  if (declared && undeclared.length) {
    return verdict({
      code: 'TESTS_UNDECLARED',
      message: `the test process reported ${tests.length} results for the ${declared.tests.length} tests declared in the test file; passing but not declared there: ${list(undeclared)}`,
      fix: 'declare tests with test()/it() and a literal name; nothing else may report a test',
    });
  }
  const report = summarize(tests);
  const neverRan = never.length ? `; ${never.length} declared test${never.length === 1 ? '' : 's'} never ran: ${list(never)}` : '';
  if (report.failed > 0) {
    return verdict({
      code: 'TESTS_FAILED',
      message: `${report.failed} of ${report.total} tests failed: ${list(tests.filter((t) => !t.pass && !t.skipped).map((t) => t.name))}${neverRan}`,
    });
  }
  if (declared && never.length) {
    return verdict({
      code: 'TESTS_NOT_RUN',
      message: `${never.length} of the ${declared.tests.length} tests declared in the test file never ran: ${list(never)}`,
      fix: 'every declared test must run: none skipped by a suite, a condition or an exception before it',
    });
  }
  if (report.total === 0) return verdict({ code: 'NO_TESTS', message: `${path.basename(job.entry)} defined no tests that ran` });
  return verdict();
}

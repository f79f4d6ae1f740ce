import { run } from 'node:test';
import type { RunnerResult, TestCase, TestReport } from './protocol.ts';

/**
 * test mode: run a bundled node:test file and report each test as data, so the
 * repair loop can show the model exactly which test failed and why.
 */
export interface TestOptions {
  env: Record<string, string>;
  timeoutMs: number;
}

interface TestEventData {
  name: string;
  nesting: number;
  skip?: boolean | string;
  todo?: boolean | string;
  details?: { duration_ms?: number; type?: 'suite' | 'test'; error?: unknown };
}

/** node:test wraps a failing assertion in an ERR_TEST_FAILURE whose `cause` is the real error. */
function errorMessage(error: unknown): string {
  const cause = (error as { cause?: unknown } | undefined)?.cause ?? error;
  if (cause instanceof Error) return cause.message;
  return typeof cause === 'string' ? cause : JSON.stringify(cause);
}

/** A file-level failure carries only "test failed"; its stderr says what really happened. */
function explain(data: TestEventData, stderr: string): string {
  const message = errorMessage(data.details?.error);
  if (data.nesting > 0 || !stderr.trim()) return message;
  return `${message}: ${stderr
    .trim()
    .split('\n')
    .filter((l) => !/^\s+at /.test(l))
    .slice(-8)
    .join('\n')}`;
}

export function summarize(tests: TestCase[]): TestReport {
  const counted = tests.filter((t) => !t.skipped);
  const passed = counted.filter((t) => t.pass).length;
  return { tests, total: counted.length, passed, failed: counted.length - passed, coverage: counted.length ? passed / counted.length : 0 };
}

export async function runTestFile(file: string, opts: TestOptions): Promise<RunnerResult> {
  const started = performance.now();
  // The suite runs in a child node process that inherits this environment.
  Object.assign(process.env, opts.env);
  const tests: TestCase[] = [];
  const stack: string[] = [];
  // What the suite's process printed to stderr: the only account of a file that fails to load.
  let stderr = '';
  const record = (data: TestEventData, pass: boolean) => {
    if (data.details?.type === 'suite') return;
    tests.push({
      name: data.name,
      path: stack.slice(0, data.nesting),
      pass,
      skipped: Boolean(data.skip || data.todo),
      durationMs: Math.round(data.details?.duration_ms ?? 0),
      ...(pass ? {} : { error: explain(data, stderr) }),
    });
  };
  const stream = run({ files: [file], timeout: opts.timeoutMs, concurrency: 1 });
  stream.on('test:start', (data: TestEventData) => {
    stack.length = data.nesting;
    stack[data.nesting] = data.name;
  });
  stream.on('test:stderr', (data: { message: string }) => {
    stderr = (stderr + data.message).slice(-4000);
  });
  stream.on('test:pass', (data: TestEventData) => record(data, true));
  stream.on('test:fail', (data: TestEventData) => record(data, false));
  // Consuming the stream drives the run; the reporter output itself is not needed.
  for await (const _ of stream) void _;
  const report = summarize(tests);
  return {
    ok: report.total > 0 && report.failed === 0,
    output: report,
    durationMs: Math.round(performance.now() - started),
    logs: [],
    ...(report.total === 0 ? { error: { code: 'NO_TESTS', message: `${file} defined no tests that ran` } } : {}),
    ...(report.failed > 0
      ? {
          error: {
            code: 'TESTS_FAILED',
            message: `${report.failed} of ${report.total} tests failed: ${tests
              .filter((t) => !t.pass && !t.skipped)
              .map((t) => t.name)
              .join(', ')}`,
          },
        }
      : {}),
  };
}

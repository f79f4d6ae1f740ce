import { Worker } from 'node:worker_threads';
import type { StaticAnalysis, StaticInput } from './static.ts';

/**
 * The static stage off the event loop: type-checking a tool takes hundreds of milliseconds of CPU
 * (seconds on a busy machine), and on the sandbox worker's own thread it stalled every activity,
 * heartbeat and poll the worker had in flight. One long-lived worker thread runs analyzeStatic
 * (static.ts) for the whole process, so what it parses once — the standard library, zod's
 * typings, the previous program static.ts reuses — stays parsed between verifications. The thread
 * is unref'd while idle (it never keeps a process alive) and ref'd while a check is in flight.
 */

// JavaScript that registers tsx in the thread, then loads static.ts (see the file).
const threadMain = new URL('./static-thread-main.mjs', import.meta.url);

/**
 * How long one check may take before its thread is stopped and the check fails. A warm check is
 * about 0.1 s and a cold one a few seconds (12 s seen on a machine at load 15); types that take
 * longer are the checked code's doing (recursive or exploding generics), and must not hold every
 * later verification of the process behind them.
 */
export const STATIC_CHECK_DEADLINE_MS = 60_000;

/** The checked code's types did not finish type-checking in time: a verdict on the code, not a crash. */
export class StaticCheckTimeoutError extends Error {
  constructor(readonly deadlineMs: number) {
    super(`the type check did not finish within ${deadlineMs < 1000 ? `${deadlineMs} ms` : `${Math.round(deadlineMs / 1000)} s`}`);
    this.name = 'StaticCheckTimeoutError';
  }
}

interface Check {
  id: number;
  input: StaticInput;
  deadlineMs: number;
  resolve(a: StaticAnalysis): void;
  reject(e: Error): void;
}

let thread: Worker | undefined;
/** Checks run one at a time, so a deadline times the check itself, never the queue before it. */
const queue: Check[] = [];
let running: { check: Check; timer: NodeJS.Timeout } | undefined;
let nextId = 0;

/** Ends the check in flight (its thread done with it), then sends the next. */
function settleRunning(): Check | undefined {
  const current = running;
  running = undefined;
  if (!current) return undefined;
  clearTimeout(current.timer);
  queueMicrotask(sendNext);
  return current.check;
}

function startThread(): Worker {
  const w = new Worker(threadMain, {
    // no inherited `--import tsx`: the thread registers tsx itself, once
    execArgv: [],
    stdout: false,
    stderr: false,
  });
  w.on('message', (m: { id: number; analysis?: StaticAnalysis; error?: string }) => {
    if (running?.check.id !== m.id) return;
    const check = settleRunning()!;
    if (m.error !== undefined) check.reject(new Error(`static analysis failed in its thread: ${m.error}`));
    else check.resolve(m.analysis!);
  });
  // A crashed thread fails the check it held; the next check starts a new one.
  const crashed = (err: Error) => {
    if (thread !== w) return; // stopped on purpose (a deadline, stopStaticThread)
    thread = undefined;
    settleRunning()?.reject(err);
  };
  w.on('error', crashed);
  w.on('exit', (code) => crashed(new Error(`the static analysis thread exited (code ${code})`)));
  w.unref();
  return w;
}

function sendNext(): void {
  if (running) return;
  const check = queue.shift();
  if (!check) {
    thread?.unref();
    return;
  }
  thread ??= startThread();
  const w = thread;
  const timer = setTimeout(() => {
    if (running?.check !== check) return;
    // The thread is busy with this check and cannot be interrupted: stop it; the next check starts another.
    thread = undefined;
    void w.terminate();
    settleRunning();
    check.reject(new StaticCheckTimeoutError(check.deadlineMs));
  }, check.deadlineMs);
  running = { check, timer };
  w.ref();
  w.postMessage({ id: check.id, input: check.input });
}

/** analyzeStatic in the long-lived thread: same input, same result, never on the caller's event loop. */
export function analyzeStaticOffThread(input: StaticInput, deadlineMs = STATIC_CHECK_DEADLINE_MS): Promise<StaticAnalysis> {
  return new Promise<StaticAnalysis>((resolve, reject) => {
    queue.push({ id: nextId++, input, deadlineMs, resolve, reject });
    sendNext();
  });
}

/**
 * Starts the thread and parses the standard library, @types/node, zod's typings and the testkit
 * ahead of the first real check (a cold check is seconds, a warm one about 0.1 s of type-checking).
 */
export async function warmStaticChecker(): Promise<void> {
  await analyzeStaticOffThread({
    source:
      "import { z } from 'zod';\nexport const manifest = { name: 'warm_up', description: 'warm-up', sideEffect: 'read', permissions: { network: [], env: [] }, input: z.object({}), output: z.object({}) };\nexport async function run(_input: unknown, _ctx: unknown) { return {}; }\n",
    tests:
      "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\nimport { testContext } from '@forge/testkit';\nimport { run } from './tool.ts';\ntest('warm', async () => assert.deepEqual(await run({}, testContext({})), {}));\n",
  });
}

/** Stops the thread (tests, shutdown); a later check starts another. */
export async function stopStaticThread(): Promise<void> {
  const w = thread;
  thread = undefined;
  settleRunning()?.reject(new Error('the static analysis thread was stopped'));
  if (w) await w.terminate();
}

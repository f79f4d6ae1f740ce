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

interface Pending {
  resolve(a: StaticAnalysis): void;
  reject(e: Error): void;
}

let thread: Worker | undefined;
const pending = new Map<number, Pending>();
let nextId = 0;

function failAll(err: Error): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
  thread = undefined;
}

function startThread(): Worker {
  const w = new Worker(threadMain, {
    // no inherited `--import tsx`: the thread registers tsx itself, once
    execArgv: [],
    stdout: false,
    stderr: false,
  });
  w.on('message', (m: { id: number; analysis?: StaticAnalysis; error?: string }) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (pending.size === 0) w.unref();
    if (m.error !== undefined) p.reject(new Error(`static analysis failed in its thread: ${m.error}`));
    else p.resolve(m.analysis!);
  });
  // A crashed thread fails what it held; the next check starts a new one.
  w.on('error', (err) => failAll(err));
  w.on('exit', (code) => failAll(new Error(`the static analysis thread exited (code ${code})`)));
  w.unref();
  return w;
}

/** analyzeStatic in the long-lived thread: same input, same result, never on the caller's event loop. */
export function analyzeStaticOffThread(input: StaticInput): Promise<StaticAnalysis> {
  thread ??= startThread();
  const w = thread;
  const id = nextId++;
  return new Promise<StaticAnalysis>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref();
    w.postMessage({ id, input });
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
  if (w) await w.terminate();
}

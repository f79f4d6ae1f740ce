import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { callTool, toRunnerError } from './call.ts';
import { execCommand } from './exec.ts';
import { idle } from './idle.ts';
import { JOB_DIR, type JobMessage, RESULT_MARKER, type RunnerResult } from './protocol.ts';
import { readResourceCounters } from './resources.ts';
import { loadTool } from './tool-module.ts';

/**
 * The generic runner inside the sandbox image (bundled to /opt/forge/runner.mjs).
 *   serve <tool.mjs>                 MCP server over stdio for one tool
 *   call  <tool.mjs> <input.json>    one call, one JSON result line
 *   test  <test.mjs>                 run a node:test suite, one JSON report line
 *   idle                             warm-pool mode: wait for one job on stdin
 */
/**
 * serve (MCP SDK + ajv) and test (node:test) load on first use: the bundle evaluates them
 * lazily, so a container booting into `idle` does not pay for what its job may not need.
 */
const serveTool: typeof import('./serve.ts').serveTool = async (...args) => (await import('./serve.ts')).serveTool(...args);
const runTestFile: typeof import('./test-mode.ts').runTestFile = async (...args) => (await import('./test-mode.ts')).runTestFile(...args);

const USAGE = 'usage: runner serve <tool.mjs> | call <tool.mjs> <input.json> | test <test.mjs> | idle';
const DEFAULT_TIMEOUT_MS = 30_000;

/** Prints the result line and exits: tools may leave timers or sockets behind, and a runner serves one job. */
function emitAndExit(result: RunnerResult, marker = true): void {
  const line = (marker ? RESULT_MARKER : '') + JSON.stringify(result) + '\n';
  process.stdout.write(line, () => process.exit(result.ok ? 0 : 1));
}

async function runJob(job: JobMessage, stdin: Readable): Promise<RunnerResult | undefined> {
  const entry = job.entry ? path.join(JOB_DIR, job.entry) : undefined;
  const need = (what: string) => {
    throw new Error(`a ${job.mode} job needs ${what}`);
  };
  switch (job.mode) {
    case 'exec':
      return execCommand(job.command ?? need('command'), job.env, job.limits.timeoutMs);
    case 'call': {
      const tool = await loadTool(entry ?? need('entry'));
      return callTool(tool, job.input, {
        env: job.env,
        permissions: job.permissions,
        sideEffect: job.sideEffect,
        timeoutMs: job.limits.timeoutMs,
        proxyUrl: job.proxyUrl,
      });
    }
    case 'test':
      return runTestFile(entry ?? need('entry'), { env: job.env, timeoutMs: job.limits.timeoutMs });
    case 'serve': {
      const tool = await loadTool(entry ?? need('entry'));
      await serveTool(tool, {
        stdin,
        stdout: process.stdout,
        env: job.env,
        permissions: job.permissions,
        sideEffect: job.sideEffect,
        timeoutMs: job.limits.timeoutMs,
      });
      return undefined;
    }
  }
}

async function main(argv: string[]): Promise<void> {
  const [mode, file, inputFile] = argv;
  const started = performance.now();
  const fail = (err: unknown) =>
    emitAndExit({ ok: false, durationMs: Math.round(performance.now() - started), logs: [], error: toRunnerError(err) }, mode === 'idle');
  try {
    switch (mode) {
      case 'idle':
        return await idle(runJob, (r) => emitAndExit({ ...r, resources: readResourceCounters() }));
      case 'call': {
        if (!file || !inputFile) throw new Error(USAGE);
        const input: unknown = JSON.parse(await readFile(inputFile, 'utf8'));
        const tool = await loadTool(path.resolve(file));
        return emitAndExit(await callTool(tool, input, { env: process.env, timeoutMs: DEFAULT_TIMEOUT_MS }), false);
      }
      case 'test':
        if (!file) throw new Error(USAGE);
        return emitAndExit(await runTestFile(path.resolve(file), { env: {}, timeoutMs: DEFAULT_TIMEOUT_MS }), false);
      case 'serve':
        if (!file) throw new Error(USAGE);
        return await serveTool(await loadTool(path.resolve(file)), {
          stdin: process.stdin,
          stdout: process.stdout,
          env: process.env,
          timeoutMs: DEFAULT_TIMEOUT_MS,
        });
      default:
        process.stderr.write(USAGE + '\n');
        process.exit(2);
    }
  } catch (err) {
    fail(err);
  }
}

await main(process.argv.slice(2));

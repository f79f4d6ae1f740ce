import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { toRunnerError } from './call.ts';
import { judgeChecks } from './checks.ts';
import { execCommand } from './exec.ts';
import { idle } from './idle.ts';
import { JudgedProcess, type JudgeSetup, judgeCall } from './judge.ts';
import { EGRESS_FLAG, JOB_DIR, type JobMessage, JUDGED_FILE, RESULT_MARKER, type RunnerResult, resultMarker } from './protocol.ts';
import { readResourceCounters } from './resources.ts';
import { judgeTest } from './test-mode.ts';
import { warmJudge } from './warm-up.ts';

/**
 * The generic runner inside the sandbox image (bundled to /opt/forge/runner.mjs), the judge:
 *   idle [--egress]  warm-pool mode: wait for one job on stdin, run it, print one result frame
 *                    (--egress: the container is on an egress network, see channel.ts EGRESS_FLAG)
 * Judged code runs in judged.mjs (judged-entry.ts), which this process starts (judge.ts); the job's
 * mode says what is judged: a call, a test file (test-mode.ts), Forge's own checks (checks.ts).
 */
const USAGE = `usage: runner idle [${EGRESS_FLAG}]`;
/** The judged process's output limit when a job names none (the host always does). */
const DEFAULT_OUTPUT_BYTES = 1024 * 1024;

/** Prints the result frame and exits: a runner serves one job. */
function emitAndExit(result: RunnerResult, nonce?: string): void {
  const line = (nonce ? resultMarker(nonce) : RESULT_MARKER) + JSON.stringify(result) + '\n';
  process.stdout.write(line, () => process.exit(result.ok ? 0 : 1));
}

/** The judge's own heap limit, passed on: the container's memory is shared by both processes. */
function heapMb(): number | undefined {
  const flag = process.execArgv.find((a) => a.startsWith('--max-old-space-size='));
  return flag ? Number(flag.split('=')[1]) : undefined;
}

const runnerDir = path.dirname(fileURLToPath(import.meta.url));
const [runnerMode, ...runnerFlags] = process.argv.slice(2);
const setup: JudgeSetup = {
  runnerDir,
  judgedPath: path.join(runnerDir, JUDGED_FILE),
  jobDir: JOB_DIR,
  heapMb: heapMb(),
  egress: runnerFlags.includes(EGRESS_FLAG),
};

/**
 * The judged processes started while the container waited for its job: `first` for whatever job
 * comes, `spare` (offline containers) for the cases of Forge's checks.
 */
interface Warm {
  first: JudgedProcess;
  spare?: JudgedProcess;
}

async function runJob(job: JobMessage, stdin: Readable, { first, spare }: Warm): Promise<RunnerResult | undefined> {
  // Only Forge's checks run judged code in two processes; any other job never has a second one
  // beside it: the container's memory and pids are the job's, as without a spare.
  if (job.mode !== 'checks') spare?.kill();
  const entry = job.entry ? path.join(JOB_DIR, job.entry) : undefined;
  const need = (what: string) => {
    throw new Error(`a ${job.mode} job needs ${what}`);
  };
  const outputBytes = job.outputBytes ?? DEFAULT_OUTPUT_BYTES;
  const timeoutMs = job.limits.timeoutMs;
  switch (job.mode) {
    case 'exec':
      first.kill();
      return execCommand(job.command ?? need('command'), job.env, timeoutMs, outputBytes);
    case 'call':
      return judgeCall(first, {
        entry: entry ?? need('entry'),
        ...(job.input !== undefined ? { input: job.input } : {}),
        ...(job.chooseInput ? { chooseInput: true } : {}),
        env: job.env,
        ...(job.permissions ? { permissions: job.permissions } : {}),
        ...(job.sideEffect ? { sideEffect: job.sideEffect } : {}),
        timeoutMs,
        outputBytes,
        ...(job.proxyUrl ? { proxyUrl: job.proxyUrl } : {}),
        ...(job.allowOpaqueSchemas ? { allowOpaqueSchemas: true } : {}),
      }).then(({ loaded: _, ...result }) => result);
    case 'checks':
      return judgeChecks(first, spare ?? new JudgedProcess(setup), {
        entry: entry ?? need('entry'),
        seed: job.seed ?? 1,
        ...(job.apiSpec ? { apiSpec: job.apiSpec } : {}),
        ...(job.permissions ? { permissions: job.permissions } : {}),
        ...(job.sideEffect ? { sideEffect: job.sideEffect } : {}),
        timeoutMs,
        outputBytes,
      });
    case 'test':
      return judgeTest(first, {
        entry: entry ?? need('entry'),
        env: job.env,
        timeoutMs,
        outputBytes,
        ...(job.declaredTests ? { declaredTests: job.declaredTests } : {}),
      });
    case 'serve': {
      const call = {
        entry: entry ?? need('entry'),
        env: job.env,
        timeoutMs,
        outputBytes,
        permissions: job.permissions,
        sideEffect: job.sideEffect,
      };
      const described = await judgeCall(first, { ...call, mode: 'describe' });
      if (!described.ok || !described.loaded) return described;
      const { serveTool } = await import('./serve.ts');
      // Each call gets a fresh judged process, started ahead: the next one boots once the last call's
      // process is gone (never beside it: the container's memory is sized for two processes), while
      // the client thinks. Still one process per call; calls that overlap start their own.
      let spare: JudgedProcess | undefined = new JudgedProcess(setup);
      let served = false;
      await serveTool({
        stdin,
        stdout: process.stdout,
        loaded: described.loaded,
        call: async (args) => {
          const judged = spare ?? new JudgedProcess(setup);
          spare = undefined;
          try {
            return await judgeCall(judged, { ...call, input: args });
          } finally {
            if (!served) spare ??= new JudgedProcess(setup);
          }
        },
      });
      served = true;
      spare?.kill();
      return undefined;
    }
  }
}

async function main(): Promise<void> {
  if (runnerMode !== 'idle' || runnerFlags.some((f) => f !== EGRESS_FLAG)) {
    process.stderr.write(USAGE + '\n');
    process.exit(2);
  }
  const started = performance.now();
  let nonce: string | undefined;
  try {
    mkdirSync(JOB_DIR, { recursive: true });
    // The judged process starts now, while the container waits for its job: READY means both are up.
    const first = new JudgedProcess(setup);
    await first.ready;
    // Then a spare one, booting while the container waits, off the job's clock and after the first
    // (so READY comes no later): Forge's checks describe the tool in the first and run their cases
    // in the spare (checks.ts). Like the first, it holds no job and has loaded no judged code until
    // its job line arrives; any other job kills it first. Not on an egress network, whose
    // containers serve calls only.
    const spare = setup.egress ? undefined : new JudgedProcess(setup);
    warmJudge();
    await idle(
      async (job, stdin) => {
        nonce = job.nonce;
        return runJob(job, stdin, { first, ...(spare ? { spare } : {}) });
      },
      (r, n) => emitAndExit({ ...r, resources: readResourceCounters() }, n),
    );
  } catch (err) {
    emitAndExit({ ok: false, durationMs: Math.round(performance.now() - started), logs: [], error: toRunnerError(err) }, nonce);
  }
}

await main();

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { jsonDepth, MAX_JSON_DEPTH, MAX_RESULT_BYTES, parseBoundedJson } from './bounded-json.ts';
import { type ChildJob, EGRESS_FLAG, HELLO, MAX_CHANNEL_LINE } from './channel.ts';
import { type Frame, frameSchema, type LoadedFrame } from './frames.ts';
import { JudgedLogs } from './logs.ts';
import { FRAME_DEPTH, type LogEntry, type RunnerError, type RunnerResult, SANDBOX_PATH_ENV } from './protocol.ts';
import { describeIssues } from './tool-module.ts';

/**
 * The judge: the runner process that reports to the host runs every piece of judged code (a tool
 * call, a test file) in a separate node process under Node's permission model, reads only fd 3 of it
 * as reports, and computes the verdict itself:
 *
 *  - the judged process can read only the runner bundle and the job's files, write no file, start no
 *    process or worker, load no native addon; so it cannot reach the judge's stdout (the host's
 *    channel), not through /proc/<ppid>/fd/1 either, nor the judge's memory or globals;
 *  - its stdout/stderr are logs, bounded and flagged when cut, never parsed;
 *  - its reports are bounded in size and depth before they are parsed, must carry the judge's
 *    per-job nonce, and are checked against a schema; anything else ends the job as a failure;
 *  - a call succeeds only when the judge, in its own realm, finds the output valid against the JSON
 *    Schema the tool declared when it loaded (before run() was called);
 *  - a test file passes only when the judge's own count says so: every test the host read in the
 *    source ran, no test it did not declare was reported, and the suite ended by itself.
 */

export interface JudgeSetup {
  /** the runner's files (judged.mjs and the chunks it loads): the judged process may read them */
  runnerDir: string;
  /** the judged process's entry, which is also its node:test reporter */
  judgedPath: string;
  /** the job's files; the only other thing the judged process may read */
  jobDir: string;
  heapMb?: number;
  /** the container is on an egress network: the judged process preloads the proxy-aware fetch (channel.ts EGRESS_FLAG) */
  egress?: boolean;
}

const DECISION_GRACE_MS = 250;
const CLOSE_WAIT_MS = 1000;
const MAX_FRAMES = 5000;
const MAX_LOG_ENTRIES = 200;

export function judgedArgs(setup: JudgeSetup): string[] {
  return [
    '--experimental-permission',
    `--allow-fs-read=${setup.runnerDir}/`,
    `--allow-fs-read=${setup.jobDir}/`,
    // Code built from strings is code no static rule saw.
    '--disallow-code-generation-from-strings',
    '--disable-warning=ExperimentalWarning',
    ...(setup.heapMb ? [`--max-old-space-size=${setup.heapMb}`] : []),
    `--test-reporter=${setup.judgedPath}`,
    setup.judgedPath,
    // The container's, not the job's: the same for whatever job comes, so the process can start ahead.
    ...(setup.egress ? [EGRESS_FLAG] : []),
  ];
}

type Stop = RunnerError;

export interface Session {
  frames: Frame[];
  /** the judge ended the process: a limit, or a report it refused */
  stop?: Stop;
  /** how the process ended, when it ended before the judge had what it needed */
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  elapsedMs: number;
  logs: ReturnType<JudgedLogs['report']>;
}

interface RunOptions {
  timeoutMs: number;
  outputBytes: number;
  /** true once the judge has what it needs from this frame on */
  decide(frame: Frame): boolean;
}

/** One judged process, started ahead of its job (the warm path pays nothing for it) and used once. */
export class JudgedProcess {
  readonly child: ChildProcess;
  /** true once the harness said hello; false when the process ended first */
  readonly ready: Promise<boolean>;
  private readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly logs = new JudgedLogs(Number.MAX_SAFE_INTEGER, () => this.onOutputExceeded?.());
  private onOutputExceeded?: () => void;
  private onLine: (line: string) => void;
  private lineOverflow?: () => void;
  private used = false;
  private ended = false;

  constructor(setup: JudgeSetup) {
    this.child = spawn(process.execPath, judgedArgs(setup), {
      cwd: setup.jobDir,
      env: { PATH: SANDBOX_PATH_ENV, HOME: '/tmp' },
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (c: Buffer) => this.logs.take('stdout', c));
    this.child.stderr!.on('data', (c: Buffer) => this.logs.take('stderr', c));
    this.child.stdin!.on('error', () => undefined); // a process that died early: its exit says why
    let sayHello!: (ok: boolean) => void;
    this.ready = new Promise((resolve) => (sayHello = resolve));
    this.onLine = (line) => sayHello(line === HELLO);
    this.closed = new Promise((resolve) => {
      this.child.on('error', () => resolve({ code: null, signal: null }));
      this.child.on('close', (code, signal) => resolve({ code, signal }));
    });
    void this.closed.then(() => {
      this.ended = true;
      sayHello(false);
    });
    this.readChannel(this.child.stdio[3] as Readable);
  }

  private readChannel(channel: Readable): void {
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    channel.on('data', (chunk: Buffer) => {
      let start = 0;
      for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
        pending.push(chunk.subarray(start, nl));
        const line = Buffer.concat(pending).toString('utf8');
        pending.length = 0;
        pendingBytes = 0;
        start = nl + 1;
        this.onLine(line);
      }
      if (start < chunk.length) {
        pending.push(chunk.subarray(start));
        pendingBytes += chunk.length - start;
        // A report line longer than any honest one is refused before it is even assembled.
        if (pendingBytes > MAX_CHANNEL_LINE) {
          pending.length = 0;
          pendingBytes = 0;
          this.lineOverflow?.();
        }
      }
    });
    channel.on('error', () => undefined);
  }

  kill(): void {
    if (!this.ended) this.child.kill('SIGKILL');
  }

  /** Sends the job and follows the process until the judge has what it needs, a limit trips, or it ends. */
  async run(job: Omit<ChildJob, 'nonce'>, opts: RunOptions): Promise<Session> {
    if (this.used) throw new Error('a judged process serves one job');
    this.used = true;
    const hello = await this.ready;
    const started = performance.now();
    const nonce = randomBytes(24).toString('hex');
    const prefix = `${nonce} `;
    const frames: Frame[] = [];
    let stop: Stop | undefined;
    let finished = false;
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const conclude = (why?: Stop) => {
      if (finished) return;
      finished = true;
      stop = why;
      finish();
    };
    const refuse = (code: string, message: string) =>
      conclude({ code, message, fix: 'judged code must not write to the report channel; return the result from run()' });

    this.logs.setLimit(opts.outputBytes);
    this.onOutputExceeded = () => conclude(outputLimit(opts.outputBytes));
    this.lineOverflow = () =>
      conclude({
        code: 'RESULT_TOO_LARGE',
        message: `the judged process sent a report longer than ${MAX_CHANNEL_LINE} bytes; it was refused unread`,
        fix: `return at most ${MAX_RESULT_BYTES} bytes of JSON`,
      });
    this.onLine = (line) => {
      if (finished) return;
      if (!line.startsWith(prefix)) {
        return refuse(
          'PROTOCOL_VIOLATION',
          `a ${line.length}-character line on the judged process's report channel did not come from Forge's harness (it lacks the job's nonce): judged code wrote to the channel, so nothing it reported is trusted`,
        );
      }
      const parsed = parseBoundedJson(
        line.slice(prefix.length),
        { maxBytes: MAX_CHANNEL_LINE, maxDepth: FRAME_DEPTH },
        'a report of the judged process',
      );
      if (!parsed.ok) {
        return conclude({
          code: parsed.code === 'RESULT_MALFORMED' ? 'PROTOCOL_VIOLATION' : parsed.code,
          message: parsed.message,
          ...(parsed.code === 'RESULT_TOO_DEEP' ? { fix: `return data nested at most ${MAX_JSON_DEPTH} levels deep` } : {}),
        });
      }
      const frame = frameSchema.safeParse(parsed.value);
      if (!frame.success)
        return refuse('PROTOCOL_VIOLATION', `the judged process sent a report of the wrong shape: ${describeIssues(frame.error)}`);
      frames.push(frame.data);
      if (frames.length > MAX_FRAMES) return refuse('PROTOCOL_VIOLATION', `the judged process sent more than ${MAX_FRAMES} reports`);
      if (opts.decide(frame.data)) conclude();
    };

    let exit: Session['exit'];
    if (hello) {
      this.child.stdin!.end(`${JSON.stringify({ ...job, nonce })}\n`);
      const timer = setTimeout(
        () =>
          conclude({
            code: 'TIMEOUT',
            message: `the judged code did not finish within its ${job.timeoutMs} ms budget; the judge stopped it`,
            fix: 'make the tool honour ctx.signal and finish sooner, or raise limits.timeoutMs',
          }),
        opts.timeoutMs + DECISION_GRACE_MS,
      );
      const ended = this.closed.then((e) => {
        // Reports still in the pipe when it closed have been read by now.
        if (!finished) exit = e;
        conclude();
      });
      await Promise.race([done, ended]);
      clearTimeout(timer);
    } else {
      exit = await this.closed;
      stop = {
        code: 'JUDGED_START_FAILED',
        message: `the judged process did not start${exit.code !== null ? ` (exit code ${exit.code})` : ''}`,
      };
    }
    const elapsedMs = Math.round(performance.now() - started);
    // Done or stopped, the process is killed at once: what it printed before its last report is in
    // the pipes already (its stdout/stderr block, judged.ts), and they are drained before the logs are read.
    this.kill();
    await Promise.race([this.closed, sleep(CLOSE_WAIT_MS)]);
    // Output still in the pipes when the report arrived counts too: over the limit is over the limit.
    if (!stop && this.logs.exceeded) stop = outputLimit(opts.outputBytes);
    return { frames, ...(stop ? { stop } : {}), ...(exit ? { exit } : {}), elapsedMs, logs: this.logs.report() };
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

function outputLimit(bytes: number): Stop {
  return {
    code: 'OUTPUT_LIMIT',
    message: `the judged process wrote more than ${bytes} bytes to stdout/stderr and was stopped; its logs are truncated`,
    fix: 'log less (ctx.log keeps structured entries), or raise limits.outputBytes',
  };
}

// ---------------------------------------------------------------------------
// Shared pieces of a verdict

export function clip(error: RunnerError): RunnerError {
  return { ...error, code: String(error.code).slice(0, 100), message: String(error.message).slice(0, 4000) };
}

export function stderrTail(session: Session): string {
  const lines = session.logs.stderr
    .trim()
    .split('\n')
    .filter((l) => l && !/^\s+at /.test(l));
  return lines.length ? `; stderr: ${lines.slice(-4).join(' | ').slice(0, 1500)}` : '';
}

export function howItEnded(exit: NonNullable<Session['exit']>): string {
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}

export function tamperedError(what: string, names: string[]): RunnerError {
  return {
    code: 'GLOBALS_TAMPERED',
    message: `${what} changed built-in objects (${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''}); the judge does not trust what such a process reports`,
    fix: 'do not patch built-ins (Object.prototype, JSON, Promise, ...): return plain data from run() and assert in tests',
  };
}

function clipLogs(entries: LogEntry[]): LogEntry[] {
  return entries.slice(0, MAX_LOG_ENTRIES).map((e) => {
    const fields = e.fields && JSON.stringify(e.fields).length > 2000 ? { truncated: true } : e.fields;
    return { ...e, msg: e.msg.slice(0, 2000), ...(fields ? { fields } : {}) };
  });
}

/**
 * The judge's validator for a schema it read, built once per schema object: Forge's checks judge
 * every case's output against the same schema (about 1 ms to build each time, the most of a case's
 * verdict). Keyed by the object the judge parsed from a report, which nothing else can change.
 */
const validators = new WeakMap<object, z.ZodType | Error>();
function validatorOf(schema: Record<string, unknown>): z.ZodType | Error {
  let validator = validators.get(schema);
  if (!validator) {
    try {
      validator = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
    } catch (err) {
      validator = err instanceof Error ? err : new Error(String(err));
    }
    validators.set(schema, validator);
  }
  return validator;
}

/** The output, checked in the judge's own realm: bounded, and valid against the schema read at load. */
export function checkOutput(output: unknown, schema: Record<string, unknown> | null, tool: string): RunnerError | undefined {
  const json = JSON.stringify(output);
  if (json !== undefined && Buffer.byteLength(json, 'utf8') > MAX_RESULT_BYTES) {
    return { code: 'RESULT_TOO_LARGE', message: `${tool}'s output is more than ${MAX_RESULT_BYTES} bytes of JSON` };
  }
  if (json !== undefined && jsonDepth(json, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    return { code: 'RESULT_TOO_DEEP', message: `${tool}'s output nests deeper than ${MAX_JSON_DEPTH} levels` };
  }
  if (!schema) return undefined;
  const validator = validatorOf(schema);
  if (validator instanceof Error) {
    return {
      code: 'SCHEMA_UNREADABLE',
      message: `the judge could not read ${tool}'s output schema as JSON Schema: ${validator.message}`,
    };
  }
  const checked = validator.safeParse(output);
  if (checked.success) return undefined;
  return {
    code: 'OUTPUT_INVALID',
    message: `${tool} returned output that does not match its output schema: ${describeIssues(checked.error)}`,
  };
}

// ---------------------------------------------------------------------------
// A call

/** A call as the judge is asked for it: the child's job without what the judge adds (nonce, cases), plus the output bound. */
export type CallJob = Omit<ChildJob, 'nonce' | 'mode' | 'cases' | 'apiSpec'> & {
  mode?: 'call' | 'describe';
  outputBytes: number;
};

export type CallVerdict = RunnerResult & { loaded?: LoadedFrame };

export async function judgeCall(judged: JudgedProcess, job: CallJob): Promise<CallVerdict> {
  const mode = job.mode ?? 'call';
  // With approved permissions, undeclared variables never reach the judged process at all.
  const env = job.permissions ? Object.fromEntries(Object.entries(job.env).filter(([k]) => job.permissions!.env.includes(k))) : job.env;
  const session = await judged.run(
    {
      mode,
      entry: job.entry,
      ...(job.input !== undefined ? { input: job.input } : {}),
      ...(job.chooseInput ? { chooseInput: true } : {}),
      env,
      ...(job.permissions ? { permissions: job.permissions } : {}),
      ...(job.sideEffect ? { sideEffect: job.sideEffect } : {}),
      timeoutMs: job.timeoutMs,
      ...(job.proxyUrl ? { proxyUrl: job.proxyUrl } : {}),
      ...(job.allowOpaqueSchemas ? { allowOpaqueSchemas: true } : {}),
    },
    {
      timeoutMs: job.timeoutMs,
      outputBytes: job.outputBytes,
      decide: (f) =>
        f.k === 'result' ||
        f.k === 'error' ||
        (f.k === 'loaded' &&
          (mode === 'describe' ||
            f.tampered.length > 0 ||
            (!f.schemas.output && !job.allowOpaqueSchemas) ||
            (f.chosen !== undefined && 'skipped' in f.chosen))),
    },
  );
  return callVerdict(session, job, mode);
}

function callVerdict(session: Session, job: CallJob, mode: 'call' | 'describe'): CallVerdict {
  const base = { durationMs: session.elapsedMs, logs: [] as LogEntry[], ...session.logs };
  const fail = (error: RunnerError, extra: Partial<CallVerdict> = {}): CallVerdict => ({
    ok: false,
    ...base,
    ...extra,
    error: clip(error),
  });
  const [first, second] = session.frames;
  const loaded = first?.k === 'loaded' ? first : undefined;
  const chosen = loaded?.chosen && 'input' in loaded.chosen ? { input: loaded.chosen.input } : {};
  if (session.stop) return fail(session.stop, { ...chosen, ...(loaded ? { loaded } : {}) });
  if (first?.k === 'error') return fail(first.error);
  const ended = (what: string): CallVerdict =>
    fail(
      {
        code: 'EXITED_EARLY',
        message: `the tool's process ${session.exit ? howItEnded(session.exit) : 'ended'} ${what}${stderrTail(session)}`,
        fix: 'return the result from run(); do not call process.exit',
      },
      chosen,
    );
  if (!first) return ended('before it loaded the tool');
  if (!loaded) return fail({ code: 'PROTOCOL_VIOLATION', message: `the judged process reported a ${first.k} before loading the tool` });
  const tool = loaded.name;
  if (loaded.tampered.length) return fail(tamperedError('the tool, while it loaded,', loaded.tampered), { loaded });
  if (mode === 'describe') return { ok: true, ...base, loaded };
  if (!loaded.schemas.output && !job.allowOpaqueSchemas) {
    return fail(
      {
        code: 'SCHEMA_UNREADABLE',
        message: `${tool}'s manifest.output is not a zod schema, so the judge cannot check its output outside the tool's own process`,
        fix: 'declare manifest.output (and manifest.input) with zod',
      },
      { loaded },
    );
  }
  if (loaded.chosen && 'skipped' in loaded.chosen) {
    return fail({ code: 'NO_INPUT', message: loaded.chosen.skipped }, { skipped: loaded.chosen.skipped, loaded });
  }
  if (!second) return ended('before it returned a result');
  if (second.k === 'error') return fail(second.error, { ...chosen, loaded });
  if (second.k !== 'result')
    return fail({ code: 'PROTOCOL_VIOLATION', message: `the judged process reported a ${second.k} during a call` });
  if (second.tampered.length) return fail(tamperedError(`${tool}, while it ran,`, second.tampered), { ...chosen, loaded });
  const logs = clipLogs(second.logs);
  const output = second.output !== undefined ? { output: second.output } : {};
  if (!second.ok) {
    return fail(second.error ?? { code: 'TOOL_FAILED', message: `${tool} failed without saying why` }, {
      ...chosen,
      ...output,
      logs,
      loaded,
    });
  }
  const problem = checkOutput(second.output, loaded.schemas.output, tool);
  if (problem) return fail(problem, { ...chosen, ...(problem.code === 'OUTPUT_INVALID' ? output : {}), logs, loaded });
  return { ok: true, ...base, ...chosen, ...output, logs, loaded };
}

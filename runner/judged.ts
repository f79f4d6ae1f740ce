import { writeSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import { MAX_JSON_DEPTH, MAX_RESULT_BYTES } from './bounded-json.ts';
import { callTool, toRunnerError } from './call.ts';
import { type ChildCase, type ChildJob, EGRESS_FLAG, HELLO, TESTKIT_PATH, ZOD_PATH } from './channel.ts';
import { warmJudged } from './judged-warm-up.ts';
import { chooseInput } from './live-probe.ts';
import type { RunnerError, RunnerResult } from './protocol.ts';
import { createMockApi } from './testkit.ts';
import { importToolModule, type LoadedTool, readableSchema, toolFromModule } from './tool-module.ts';

/**
 * The harness inside the judged process: the child node process the judge (judge.ts) starts under
 * Node's permission model for one tool call or one test file. It loads the judged code, runs it, and
 * reports on fd 3 with the judge's nonce. Nothing it reports is trusted: the judge checks the output
 * against the schema the tool declared, counts tests itself and ends the job on anything odd.
 *
 * What this harness does guard is its own reports against the judged code sharing its realm: it takes
 * the built-ins it needs before any judged code runs, frames its reports from primitives, disables
 * the heap snapshot (which would show the nonce), and names any built-in the judged code changed.
 */

// Taken at bundle evaluation, before any judged code exists in this process.
const write = writeSync;
const stringify = JSON.stringify;
const parseJson = JSON.parse;
const ownKeys = Reflect.ownKeys;
const describeProperty = Reflect.getOwnPropertyDescriptor;
const isArray = Array.isArray;
const asString = String;
const byteLength = Buffer.byteLength;
const toBuffer = Buffer.from;
const exit = process.exit.bind(process);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const wait = Atomics.wait;

/** Set once the job arrived; lives only in this module's scope, out of the judged code's reach. */
let nonce = '';

function writeLine(line: string): void {
  const bytes = toBuffer(line + '\n', 'utf8');
  let at = 0;
  while (at < bytes.length) {
    try {
      at += write(3, bytes, at, bytes.length - at);
    } catch (err) {
      // fd 3 is a blocking socket here, but be safe if it is not: wait for the judge to read.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      wait(sleeper, 0, 0, 2);
    }
  }
}

/** One frame; `json` must already be JSON text built by this harness. */
function frame(json: string): void {
  writeLine(`${nonce} ${json}`);
}

const quote = (s: unknown) => stringify(asString(s));

// ---------------------------------------------------------------------------
// Built-ins the judged code must leave alone

const WATCHED: Array<[string, object]> = [
  ['Object.prototype', Object.prototype],
  ['Array.prototype', Array.prototype],
  ['Function.prototype', Function.prototype],
  ['Promise.prototype', Promise.prototype],
  ['String.prototype', String.prototype],
  ['Number.prototype', Number.prototype],
  ['Boolean.prototype', Boolean.prototype],
  ['Symbol.prototype', Symbol.prototype],
  ['BigInt.prototype', BigInt.prototype],
  ['Object', Object],
  ['Array', Array],
  ['Promise', Promise],
  ['JSON', JSON],
  ['Reflect', Reflect],
];

type Slot = [key: PropertyKey, value: unknown, get: unknown, set: unknown];

/** Every own property of the watched built-ins, by identity; plain loops only, no methods judged code could replace. */
function fingerprint(): Slot[][] {
  const out: Slot[][] = [];
  for (let i = 0; i < WATCHED.length; i++) {
    const target = WATCHED[i]![1];
    const keys = ownKeys(target);
    const slots: Slot[] = [];
    for (let j = 0; j < keys.length; j++) {
      const d = describeProperty(target, keys[j]!)!;
      slots[slots.length] = [keys[j]!, d.value, d.get, d.set];
    }
    out[out.length] = slots;
  }
  return out;
}

function tamperedSince(base: Slot[][]): string[] {
  const now = fingerprint();
  const changed: string[] = [];
  for (let i = 0; i < WATCHED.length; i++) {
    const before = base[i]!;
    const after = now[i]!;
    const name = WATCHED[i]![0];
    const find = (list: Slot[], key: PropertyKey) => {
      for (let j = 0; j < list.length; j++) if (list[j]![0] === key) return list[j];
      return undefined;
    };
    for (let j = 0; j < after.length; j++) {
      const slot = after[j]!;
      const old = find(before, slot[0]);
      if (!old || old[1] !== slot[1] || old[2] !== slot[2] || old[3] !== slot[3]) changed[changed.length] = `${name}.${asString(slot[0])}`;
    }
    for (let j = 0; j < before.length; j++) {
      if (!find(after, before[j]![0])) changed[changed.length] = `${name}.${asString(before[j]![0])} (deleted)`;
    }
  }
  return changed.length > 50 ? changed.slice(0, 50) : changed;
}

/** The heap snapshot would show this module's nonce to the judged code; V8 flags could re-enable natives. */
function closeIntrospection(): void {
  const refuse = (what: string) => () => {
    throw new Error(`${what} is not available inside the Forge sandbox`);
  };
  const api = v8 as unknown as Record<string, unknown>;
  for (const name of ['getHeapSnapshot', 'writeHeapSnapshot', 'setFlagsFromString']) api[name] = refuse(`v8.${name}`);
  syncBuiltinESMExports();
}

/**
 * Writes to stdout/stderr block until the judge has read them, so a flood meets the output limit
 * while it happens (instead of queueing in this process's memory) and everything printed before the
 * result is in the judge's hands when the result arrives.
 */
function blockingLogs(): void {
  for (const stream of [process.stdout, process.stderr]) {
    (stream as unknown as { _handle?: { setBlocking?: (on: boolean) => void } })._handle?.setBlocking?.(true);
  }
}

// ---------------------------------------------------------------------------
// The output, as JSON the judge can take

const MAX_NODES = 200_000;

function serializationError(code: 'RESULT_NOT_SERIALIZABLE' | 'RESULT_TOO_DEEP' | 'RESULT_TOO_LARGE', message: string): RunnerError {
  const fix =
    code === 'RESULT_NOT_SERIALIZABLE'
      ? 'return plain JSON data: objects, arrays, strings, finite numbers, booleans and null'
      : code === 'RESULT_TOO_DEEP'
        ? `return data nested at most ${MAX_JSON_DEPTH} levels deep`
        : `return at most ${MAX_RESULT_BYTES} bytes of JSON (summarise, page or truncate)`;
  return { code, message, fix };
}

/**
 * Walks the output before it is serialized, so a function, a BigInt, a cycle or a 100k-deep value is
 * named for what it is (with where it is), instead of being dropped by JSON.stringify or overflowing
 * its stack. Iterative: the depth of the value cannot overflow this walk either.
 */
export function outputProblem(value: unknown): RunnerError | undefined {
  type Item = { v: unknown; path: string; depth: number } | { leave: object };
  const stack: Item[] = [{ v: value, path: 'output', depth: 0 }];
  const ancestors = new Set<object>();
  let visited = 0;
  try {
    while (stack.length) {
      const item = stack.pop()!;
      if ('leave' in item) {
        ancestors.delete(item.leave);
        continue;
      }
      const { v, depth } = item;
      const path = item.path.length > 80 ? `${item.path.slice(0, 60)}…${item.path.slice(-16)}` : item.path;
      if (++visited > MAX_NODES) {
        return serializationError('RESULT_TOO_LARGE', `the tool's output has more than ${MAX_NODES} values`);
      }
      if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') {
        return serializationError(
          'RESULT_NOT_SERIALIZABLE',
          `the tool's output is not JSON: ${path} is a ${typeof v === 'bigint' ? 'BigInt' : typeof v}`,
        );
      }
      if (typeof v === 'number' && !Number.isFinite(v)) {
        return serializationError('RESULT_NOT_SERIALIZABLE', `the tool's output is not JSON: ${path} is ${asString(v)}`);
      }
      if (typeof v !== 'object' || v === null) continue;
      if (depth >= MAX_JSON_DEPTH) {
        return serializationError('RESULT_TOO_DEEP', `the tool's output nests deeper than ${MAX_JSON_DEPTH} levels (at ${path})`);
      }
      if (ancestors.has(v)) {
        return serializationError('RESULT_NOT_SERIALIZABLE', `the tool's output is not JSON: ${path} refers back to itself (a cycle)`);
      }
      // Date and the like serialize themselves.
      if (typeof (v as { toJSON?: unknown }).toJSON === 'function') continue;
      ancestors.add(v);
      stack.push({ leave: v });
      if (isArray(v)) for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: `${path}[${i}]`, depth: depth + 1 });
      else
        for (const key of Object.keys(v)) stack.push({ v: (v as Record<string, unknown>)[key], path: `${path}.${key}`, depth: depth + 1 });
    }
  } catch (err) {
    return serializationError(
      'RESULT_NOT_SERIALIZABLE',
      `reading the tool's output threw: ${err instanceof Error ? err.message : asString(err)}`,
    );
  }
  return undefined;
}

function encodeOutput(value: unknown): { json?: string; error?: RunnerError } {
  const problem = outputProblem(value);
  if (problem) return { error: problem };
  let json: string | undefined;
  try {
    json = stringify(value);
  } catch (err) {
    return { error: serializationError('RESULT_NOT_SERIALIZABLE', `the tool's output is not JSON: ${(err as Error).message}`) };
  }
  if (json !== undefined && byteLength(json, 'utf8') > MAX_RESULT_BYTES) {
    return {
      error: serializationError(
        'RESULT_TOO_LARGE',
        `the tool's output is ${byteLength(json, 'utf8')} bytes of JSON, more than the ${MAX_RESULT_BYTES} allowed`,
      ),
    };
  }
  return { json };
}

// ---------------------------------------------------------------------------
// Modes

/** The job: the one line the judge writes on stdin (taken at its newline, without waiting for the end of stdin). */
function readJob(): Promise<ChildJob> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onData = (c: Buffer) => {
      const nl = c.indexOf(10);
      if (nl < 0) return void chunks.push(c);
      chunks.push(c.subarray(0, nl));
      process.stdin.off('data', onData);
      process.stdin.pause();
      try {
        const job = parseJson(Buffer.concat(chunks).toString('utf8')) as ChildJob;
        // From the judge, so only its shape is checked: enough to be sure this is a job at all.
        if (typeof job?.nonce !== 'string' || job.nonce.length < 16 || typeof job.entry !== 'string') throw new Error('not a job');
        resolve(job);
      } catch (err) {
        reject(err);
      }
    };
    process.stdin.on('data', onData);
    process.stdin.on('error', reject);
    process.stdin.once('end', () => reject(new Error('stdin ended before a job arrived')));
  });
}

/** An error as JSON built from its string fields only: no toJSON or getter of judged code shapes it. */
function errorJson(error: RunnerError): string {
  const fields: Record<string, string> = { code: 'TOOL_THREW', message: '(the error could not be read)' };
  for (const [key, max] of [
    ['code', 100],
    ['message', 4000],
    ['fix', 1000],
    ['name', 200],
    ['stack', 2000],
  ] as const) {
    try {
      const value = (error as Record<string, unknown>)[key];
      if (typeof value === 'string') fields[key] = value.slice(0, max);
    } catch {
      // a getter that throws: keep what there is
    }
  }
  let json = '{';
  for (const key of ['code', 'message', 'fix', 'name', 'stack']) {
    if (fields[key] !== undefined) json += `${json === '{' ? '' : ','}"${key}":${quote(fields[key])}`;
  }
  return `${json}}`;
}

function errorFrame(error: RunnerError): void {
  frame(`{"k":"error","error":${errorJson(error)}}`);
}

interface Judged {
  tool: LoadedTool;
  schemas: { input: Record<string, unknown> | null; output: Record<string, unknown> | null };
}

/**
 * Loads the tool and reports it (the `loaded` frame, with `extra` fields); undefined when the job
 * cannot go on, which has then been reported (a load error, changed built-ins, not a tool).
 */
async function loadJudged(
  job: ChildJob,
  base: Slot[][],
  extra: (tool: LoadedTool) => Record<string, unknown> = () => ({}),
): Promise<Judged | undefined> {
  let mod: Record<string, unknown>;
  let loadError: unknown;
  try {
    mod = await importToolModule(job.entry);
  } catch (err) {
    loadError = err;
    mod = {};
  }
  // First thing after the module's own code ran: which built-ins did it change? (Even if it then failed.)
  const tampered = tamperedSince(base);
  if (!tampered.length && loadError !== undefined) return void errorFrame(toRunnerError(loadError));
  if (tampered.length) {
    // Nothing this process would serialize can be trusted now: say only which built-ins changed.
    const names = tampered.map(quote).join(',');
    return void frame(
      `{"k":"loaded","name":"(not read)","description":"","permissions":{"network":[],"env":[]},"schemas":{"input":null,"output":null},"tampered":[${names}]}`,
    );
  }
  let tool: LoadedTool;
  try {
    tool = toolFromModule(job.entry, mod);
  } catch (err) {
    return void errorFrame(toRunnerError(err));
  }
  const schemas = { input: readableSchema(tool.input, 'input'), output: readableSchema(tool.output, 'output') };
  frame(
    stringify({
      k: 'loaded',
      name: tool.name,
      description: tool.description,
      ...(tool.sideEffect ? { sideEffect: tool.sideEffect } : {}),
      permissions: tool.permissions,
      schemas,
      tampered: [],
      ...extra(tool),
    }),
  );
  return { tool, schemas };
}

/** How a call ended, as frame fields built here: ok, the output as JSON the judge can take, the error. */
function outcomeFields(result: RunnerResult, tampered: string[]): string {
  const encoded = result.output === undefined || tampered.length ? {} : encodeOutput(result.output);
  const error = encoded.error ?? result.error;
  const ok = result.ok && !encoded.error;
  return (
    `"ok":${ok ? 'true' : 'false'}${encoded.json !== undefined ? `,"output":${encoded.json}` : ''}` +
    `${error ? `,"error":${errorJson(error)}` : ''}`
  );
}

async function judgedCall(job: ChildJob, base: Slot[][]): Promise<void> {
  let chosen: ReturnType<typeof chooseInput> | undefined;
  const loaded = await loadJudged(job, base, (tool) => {
    chosen = job.mode === 'call' && job.chooseInput && job.input === undefined ? chooseInput(tool, undefined) : undefined;
    return chosen ? { chosen } : {};
  });
  if (!loaded) return;
  const { tool, schemas } = loaded;
  if (job.mode === 'describe') return;
  if (!schemas.output && !job.allowOpaqueSchemas) return; // the judge fails it: no output schema it can read
  if (chosen && 'skipped' in chosen) return;
  const input = chosen && 'input' in chosen ? chosen.input : job.input;
  const result = await callTool(tool, input, {
    env: job.env,
    permissions: job.permissions,
    sideEffect: job.sideEffect,
    timeoutMs: job.timeoutMs,
    proxyUrl: job.proxyUrl,
  });
  const after = tamperedSince(base);
  let logs = '[]';
  try {
    if (!after.length) logs = stringify(result.logs.slice(0, 500));
  } catch {
    // a log field that is not JSON: the logs are lost, the result is not
  }
  frame(`{"k":"result",${outcomeFields(result, after)},"logs":${logs},"tampered":[${after.map(quote).join(',')}]}`);
}

// ---------------------------------------------------------------------------
// Checks mode: Forge's own calls (generated inputs, injected API faults), cases made by the judge

interface Transport {
  fetch: typeof fetch;
  /** the case is over: later requests (from a run that outlived it) are refused */
  close(): void;
}

/** Without an API spec there is nothing to answer as the API, and the container has no network. */
function offlineTransport(): Transport {
  const fetchImpl = (input: string | URL | Request) =>
    Promise.reject(
      new Error(
        `there is no network in Forge's checks, and no api-spec.json to answer as the API: ${asString(input instanceof Request ? input.url : input)} was not fetched`,
      ),
    );
  return { fetch: fetchImpl as typeof fetch, close: () => undefined };
}

/**
 * ctx.fetch answered by the testkit's mock of the job's API spec, with the case's fault. In a fault
 * case every answer is reported as it happens (the judge times the reports) and requests past the
 * case's `maxRequests` are refused: the judge reads them as retrying without bound.
 */
function mockTransport(job: ChildJob, c: ChildCase): Transport {
  const mock = createMockApi(job.apiSpec, { env: job.env, ...(c.fault ? { faults: [c.fault] } : {}) });
  let count = 0;
  let closed = false;
  const report = (method: string, status: number | null, fault: string | undefined, over = false) =>
    frame(
      `{"k":"request","i":${c.i},"method":${quote(method.slice(0, 16))},"status":${status === null ? 'null' : asString(Math.trunc(status))}` +
        `${fault ? `,"fault":${quote(fault)}` : ''}${over ? ',"over":true' : ''}}`,
    );
  const fetchImpl = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    if (closed) return Promise.reject(new Error("Forge's check of this call is over: the request was not sent"));
    count += 1;
    const method = asString(init?.method ?? 'GET');
    const max = c.maxRequests ?? Number.POSITIVE_INFINITY;
    if (c.fault && count > max) {
      if (count === max + 1) report(method, null, undefined, true);
      return Promise.reject(
        new Error(`Forge's mock API refused request ${count}: more than ${max} requests in one call is retrying without bound`),
      );
    }
    const before = mock.calls.length;
    const pending = mock.fetch(input, init);
    if (!c.fault) return pending;
    const call = mock.calls.length > before ? mock.calls[before] : undefined;
    return pending.then(
      (res) => {
        report(method, res.status, call?.fault);
        return res;
      },
      (err: unknown) => {
        report(method, null, call?.fault);
        throw err;
      },
    );
  };
  return {
    fetch: fetchImpl as typeof fetch,
    close: () => {
      closed = true;
    },
  };
}

async function judgedChecks(job: ChildJob, base: Slot[][]): Promise<void> {
  const loaded = await loadJudged(job, base);
  if (!loaded?.schemas.output) return; // reported, or the judge fails it: no output schema it can read
  const { tool } = loaded;
  const cases = job.cases ?? [];
  const run = async (c: ChildCase): Promise<{ stop: boolean }> => {
    frame(`{"k":"begin","i":${c.i}}`);
    const transport = job.apiSpec ? mockTransport(job, c) : offlineTransport();
    const result = await callTool(tool, c.input, {
      env: job.env,
      permissions: job.permissions,
      sideEffect: job.sideEffect,
      timeoutMs: c.budgetMs,
      fetchImpl: transport.fetch,
    });
    transport.close();
    const after = tamperedSince(base);
    frame(`{"k":"case","i":${c.i},${outcomeFields(result, after)},"tampered":[${after.map(quote).join(',')}]}`);
    // A call still running past its budget would go on beside the next case, and changed built-ins spoil every later one.
    return { stop: after.length > 0 || result.error?.code === 'TIMEOUT' };
  };
  let stopped = false;
  for (const c of cases) {
    if (c.parallel) continue;
    if ((await run(c)).stop) {
      stopped = true;
      break;
    }
  }
  if (!stopped) await Promise.all(cases.filter((c) => c.parallel).map(run));
  frame(`{"k":"done","tampered":[${tamperedSince(base).map(quote).join(',')}]}`);
}

// ---------------------------------------------------------------------------
// Test mode: node:test in this process, reported by the reporter below (--test-reporter names this bundle)

let reporterStarted = false;
let testBaseline: Slot[][] | undefined;

interface TestEventData {
  name?: unknown;
  nesting?: unknown;
  skip?: unknown;
  todo?: unknown;
  details?: { duration_ms?: unknown; type?: unknown; error?: unknown };
}

/** node:test wraps a failing assertion in an ERR_TEST_FAILURE whose `cause` is the real error. */
function errorMessage(error: unknown): string {
  try {
    const cause = (error as { cause?: unknown } | undefined)?.cause ?? error;
    if (cause instanceof Error) return asString(cause.message);
    return typeof cause === 'string' ? cause : asString(stringify(cause));
  } catch {
    return 'the test failed (its error could not be read)';
  }
}

function eventFrame(type: 'start' | 'pass' | 'fail', data: TestEventData): void {
  const ms = Number(data.details?.duration_ms ?? 0);
  frame(
    `{"k":"event","type":"${type}","name":${quote(data.name ?? '')},"nesting":${Number(data.nesting) || 0},` +
      `"suite":${data.details?.type === 'suite' ? 'true' : 'false'},"skip":${data.skip ? 'true' : 'false'},` +
      `"todo":${data.todo ? 'true' : 'false'},"ms":${Number.isFinite(ms) && ms >= 0 ? ms : 0}` +
      `${type === 'fail' ? `,"error":${quote(errorMessage(data.details?.error).slice(0, 4000))}` : ''}}`,
  );
}

function doneFrame(): void {
  const tampered = testBaseline ? tamperedSince(testBaseline) : [];
  frame(`{"k":"done","tampered":[${tampered.map(quote).join(',')}]}`);
}

/** The reporter node:test loads from judged.mjs (the judged process runs with --test-reporter=<judged.mjs>). */
// biome-ignore lint/correctness/useYield: node:test takes a generator; this one reports on fd 3 and prints nothing
export async function* forgeTestReporter(source: AsyncIterable<{ type: string; data: TestEventData }>): AsyncGenerator<string> {
  if (!nonce) return; // not the judged process: nothing to report to
  reporterStarted = true;
  for await (const event of source) {
    if (event.type === 'test:start') eventFrame('start', event.data);
    else if (event.type === 'test:pass') eventFrame('pass', event.data);
    else if (event.type === 'test:fail') eventFrame('fail', event.data);
  }
  // The stream ends when the whole suite has finished: an early exit never gets here.
  doneFrame();
}

async function judgedTest(job: ChildJob, base: Slot[][]): Promise<void> {
  Object.assign(process.env, job.env);
  testBaseline = base;
  // A file that declares no test never starts the reporter; it is done once nothing is left to run.
  process.once('beforeExit', () => {
    if (!reporterStarted) doneFrame();
  });
  try {
    await import(pathToFileURL(job.entry).href);
  } catch (err) {
    errorFrame({ code: 'TESTS_LOAD_FAILED', message: `the test file failed to load: ${toRunnerError(err).message}` });
  }
}

/** Entry point of the judged process (judged.mjs, judged-entry.ts). */
export async function judgedMain(): Promise<void> {
  // On an egress network the job is a proxied call: undici loads now, while the container waits,
  // not on the call's clock. Before hello, so `ready` still means the process is all set.
  if (process.argv.includes(EGRESS_FLAG)) await import('./proxy-fetch.ts');
  // Likewise the image's zod, which every tool and test bundle imports (~40 ms to load): their import
  // then finds it in the module cache, its code compiled (judged-warm-up.ts). Still before any judged
  // code. A process outside the image (no such file) goes on: the bundle's own import reports what is missing.
  const imageZod = await import(pathToFileURL(ZOD_PATH).href).catch(() => undefined);
  const offline = !process.argv.includes(EGRESS_FLAG);
  // And where tests may run, the image's testkit, which every test bundle imports.
  if (offline) await import(pathToFileURL(TESTKIT_PATH).href).catch(() => undefined);
  await warmJudged(imageZod, { tests: offline });
  writeLine(HELLO);
  let job: ChildJob;
  try {
    job = await readJob();
  } catch (err) {
    process.stderr.write(`judged process: no valid job on stdin: ${err instanceof Error ? err.message : String(err)}\n`);
    return exit(2);
  }
  nonce = job.nonce;
  closeIntrospection();
  blockingLogs();
  // Loaded before the tool, which could otherwise replace what it uses (already there when preloaded)
  if (job.proxyUrl) await import('./proxy-fetch.ts');
  const base = fingerprint();
  if (job.mode === 'test') return judgedTest(job, base);
  try {
    await (job.mode === 'checks' ? judgedChecks(job, base) : judgedCall(job, base));
  } catch (err) {
    errorFrame(toRunnerError(err));
  }
  // Tools may leave timers or sockets behind; this process served its one job.
  exit(0);
}

import { z } from 'zod';
import { apiSpecSchema, permissionsSchema, sideEffectSchema } from '../domain/tool.ts';
import { MAX_JSON_DEPTH, MAX_RESULT_BYTES, parseBoundedJson } from './bounded-json.ts';

/**
 * The wire protocol between the host (services/sandbox) and the runner inside a
 * container. Pure: both sides import it, so they cannot drift apart.
 *
 * Inside the container the runner is the judge: it runs the judged code (a tool, a test file, a
 * command) in a separate process and is the only writer of the container's stdout, which carries
 *   READY_MARKER "\n", then one result frame: RESULT_MARKER + nonce + ":" + JSON(RunnerResult) + "\n"
 * The nonce is the host's, sent with the job and never passed on to the judged process, so a frame
 * without it is not the judge's and is never read as the result. What the judged process prints is
 * data (logs) inside the frame, never protocol.
 */
export const READY_MARKER = '\u001eFORGE_READY\u001f';
export const RESULT_MARKER = '\u001eFORGE_RESULT\u001f';

/** Where the runner writes job files: a tmpfs inside the container. */
export const JOB_DIR = '/tmp/job';
/** The runner's files in the image: runner.mjs (the judge), judged.mjs (the judged process) and their chunks. */
export const RUNNER_DIR = '/opt/forge';
export const RUNNER_PATH = `${RUNNER_DIR}/runner.mjs`;
export const JUDGED_FILE = 'judged.mjs';
export { NODE_PATH } from '../domain/sandbox-image.ts';
/** The runner's option for a container on an egress network, and the image's zod for bundles (defined beside the judged process's channel, which loads no zod). */
export { EGRESS_FLAG, TESTKIT_FILE, TESTKIT_PATH, ZOD_FILE, ZOD_PATH } from './channel.ts';
export const SANDBOX_PATH_ENV = '/usr/local/bin:/usr/bin:/bin';

const fileNameSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^(?!\/)(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9._/-]+$/, 'a relative path without . or .. segments');

/** http://<proxy address>:<port> on the job's egress network; nothing else is a proxy address. */
export const proxyUrlSchema = z.string().regex(/^http:\/\/[A-Za-z0-9.:[\]-]+:\d{1,5}$/, 'http://<host>:<port> of the egress proxy');

export const jobModeSchema = z.enum(['call', 'test', 'exec', 'serve', 'checks']);
export type JobMode = z.infer<typeof jobModeSchema>;

export const nonceSchema = z.string().regex(/^[0-9a-f]{16,64}$/, 'hex');

/**
 * The tests a test file declares, read from its source by the host (never from the judged process).
 * `tests` are those with a literal name at a fixed place; `dynamic` counts the call sites the source
 * cannot name ahead (a computed name, a call in a loop, a condition or a helper).
 */
export const declaredTestsSchema = z.object({
  tests: z.array(z.object({ path: z.array(z.string()), name: z.string() })).max(2000),
  dynamic: z.number().int().min(0),
});
export type DeclaredTests = z.infer<typeof declaredTestsSchema>;

/** One job, sent as one JSON line on the container's stdin. */
export const jobMessageSchema = z.object({
  mode: jobModeSchema,
  files: z.record(fileNameSchema, z.string()).default({}),
  /** the file to load (call/test/serve); relative to JOB_DIR */
  entry: fileNameSchema.optional(),
  /** exec mode: argv; argv[0] is looked up on PATH inside the container */
  command: z.array(z.string()).min(1).optional(),
  input: z.unknown().optional(),
  env: z.record(z.string(), z.string()).default({}),
  permissions: permissionsSchema.optional(),
  /** the approved side effect (call/serve): `read` limits ctx.fetch to GET, HEAD and OPTIONS */
  sideEffect: sideEffectSchema.optional(),
  limits: z.object({ timeoutMs: z.number().int().positive() }),
  /** call mode: the egress proxy ctx.fetch goes through (plain http to the proxy; https is tunnelled) */
  proxyUrl: proxyUrlSchema.optional(),
  /** the host's secret for this job: the judge's result frame carries it; the judged process never sees it */
  nonce: nonceSchema.optional(),
  /** what the judged process may write to stdout + stderr together; beyond it the judge stops it */
  outputBytes: z.number().int().positive().optional(),
  /** test mode: the tests the test file declares, as the host read them from its source */
  declaredTests: declaredTestsSchema.optional(),
  /** call mode without `input`: the judged process picks one (the schema's first example, else `{}`) */
  chooseInput: z.boolean().optional(),
  /**
   * call mode: accept a tool whose schemas are not zod schemas, so the judge cannot read them as data
   * and checks only that the output is JSON (hand-written test fixtures). Without it such a tool fails.
   */
  allowOpaqueSchemas: z.boolean().optional(),
  /** checks mode: the API the mock answers as (and whose failures are injected); without it, no fault checks */
  apiSpec: apiSpecSchema.optional(),
  /** checks mode: the seed of the generated inputs */
  seed: z.number().int().min(0).max(0xffffffff).optional(),
});
export type JobMessage = z.infer<typeof jobMessageSchema>;
export type JobMessageInput = z.input<typeof jobMessageSchema>;

export const logEntrySchema = z.object({
  t: z.string(),
  level: z.enum(['debug', 'info', 'warn', 'error']),
  msg: z.string(),
  fields: z.record(z.string(), z.unknown()).optional(),
});
export type LogEntry = z.infer<typeof logEntrySchema>;

export const runnerErrorSchema = z.object({ code: z.string(), message: z.string() }).catchall(z.unknown());
export type RunnerError = z.infer<typeof runnerErrorSchema>;

export const testCaseSchema = z.object({
  name: z.string(),
  /** enclosing describe() names, outermost first */
  path: z.array(z.string()).default([]),
  pass: z.boolean(),
  skipped: z.boolean().default(false),
  durationMs: z.number(),
  error: z.string().optional(),
});
export type TestCase = z.infer<typeof testCaseSchema>;

export const testReportSchema = z.object({
  tests: z.array(testCaseSchema),
  total: z.number().int(),
  passed: z.number().int(),
  failed: z.number().int(),
  /** passed / total (0 when there are no tests) */
  coverage: z.number(),
});
export type TestReport = z.infer<typeof testReportSchema>;

/** What the runner prints after RESULT_MARKER. */
export const runnerResultSchema = z.object({
  ok: z.boolean(),
  output: z.unknown().optional(),
  error: runnerErrorSchema.optional(),
  /** exec mode: the command's exit code */
  exitCode: z.number().int().nullable().optional(),
  /** time the runner spent on the job itself, from reading it to printing this */
  durationMs: z.number(),
  logs: z.array(logEntrySchema).default([]),
  /** the container's cgroup counters when the job ended (idle mode only) */
  resources: z.object({ oomKills: z.number().optional(), pidsLimitHits: z.number().optional() }).optional(),
  /** what the judged process wrote: logs, kept head and tail, never read as protocol */
  stdout: z.string().optional(),
  stderr: z.string().optional(),
  /** the logs above are cut (or the process was stopped for writing too much): `logBytes` says how much there was */
  logsTruncated: z.boolean().optional(),
  logBytes: z.object({ stdout: z.number(), stderr: z.number() }).optional(),
  /** call mode with chooseInput: the input the call was made with */
  input: z.unknown().optional(),
  /** call mode with chooseInput: why no call was made */
  skipped: z.string().optional(),
});
export type RunnerResult = z.infer<typeof runnerResultSchema>;

/**
 * The judge's frame, JSON-escaped logs included, is at most this: the output (MAX_RESULT_BYTES),
 * a test report, and the kept logs; the host refuses anything bigger unparsed.
 */
export const MAX_FRAME_BYTES = MAX_RESULT_BYTES + 2 * 1024 * 1024;
/** The output sits one level below the frame's top. */
export const FRAME_DEPTH = MAX_JSON_DEPTH + 4;

export function resultMarker(nonce?: string): string {
  return nonce ? `${RESULT_MARKER}${nonce}:` : RESULT_MARKER;
}

/**
 * Finds the judge's result frame in a container's stdout: with a nonce, the first frame carrying it
 * (nothing else can); without one, the last frame. The frame is bounded before it is parsed.
 */
export function splitRunnerOutput(stdout: string, nonce?: string): { stdout: string; result?: RunnerResult; malformed?: string } {
  const marker = resultMarker(nonce);
  const at = nonce ? stdout.indexOf(marker) : stdout.lastIndexOf(marker);
  const withoutReady = (s: string) => s.split(READY_MARKER + '\n').join('');
  if (at < 0) return { stdout: withoutReady(stdout) };
  const end = stdout.indexOf('\n', at);
  const line = stdout.slice(at + marker.length, end < 0 ? undefined : end);
  const before = withoutReady(stdout.slice(0, at));
  const parsed = parseBoundedJson(line, { maxBytes: MAX_FRAME_BYTES, maxDepth: FRAME_DEPTH }, "the runner's result frame");
  if (!parsed.ok) return { stdout: before, malformed: parsed.message };
  const result = runnerResultSchema.safeParse(parsed.value);
  if (result.success) return { stdout: before, result: result.data };
  return { stdout: before, malformed: result.error.message };
}

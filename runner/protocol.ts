import { z } from 'zod';
import { permissionsSchema, sideEffectSchema } from '../domain/tool.ts';

/**
 * The wire protocol between the host (services/sandbox) and the runner inside a
 * container. Pure: both sides import it, so they cannot drift apart.
 *
 * The container's stdout carries whatever the job prints, then one result line:
 *   RESULT_MARKER + JSON(RunnerResult) + "\n"
 * The markers start with ASCII control characters no sane tool prints, and the host
 * takes the LAST marker, so output printed by a tool cannot hide the real result.
 */
export const READY_MARKER = '\u001eFORGE_READY\u001f';
export const RESULT_MARKER = '\u001eFORGE_RESULT\u001f';

/** Where the runner writes job files: a tmpfs inside the container. */
export const JOB_DIR = '/tmp/job';
export const RUNNER_PATH = '/opt/forge/runner.mjs';
export { NODE_PATH } from '../domain/sandbox-image.ts';
export const SANDBOX_PATH_ENV = '/usr/local/bin:/usr/bin:/bin';

const fileNameSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^(?!\/)(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9._/-]+$/, 'a relative path without . or .. segments');

/** http://<proxy address>:<port> on the job's egress network; nothing else is a proxy address. */
export const proxyUrlSchema = z.string().regex(/^http:\/\/[A-Za-z0-9.:[\]-]+:\d{1,5}$/, 'http://<host>:<port> of the egress proxy');

export const jobModeSchema = z.enum(['call', 'test', 'exec', 'serve']);
export type JobMode = z.infer<typeof jobModeSchema>;

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
});
export type RunnerResult = z.infer<typeof runnerResultSchema>;

/** Finds the last result line in a container's stdout; returns the text before it as the job's own output. */
export function splitRunnerOutput(stdout: string): { stdout: string; result?: RunnerResult; malformed?: string } {
  const at = stdout.lastIndexOf(RESULT_MARKER);
  const withoutReady = (s: string) => s.split(READY_MARKER + '\n').join('');
  if (at < 0) return { stdout: withoutReady(stdout) };
  const line = stdout.slice(at + RESULT_MARKER.length).split('\n')[0] ?? '';
  const before = withoutReady(stdout.slice(0, at));
  try {
    const parsed = runnerResultSchema.safeParse(JSON.parse(line));
    if (parsed.success) return { stdout: before, result: parsed.data };
    return { stdout: before, malformed: parsed.error.message };
  } catch (err) {
    return { stdout: before, malformed: err instanceof Error ? err.message : String(err) };
  }
}

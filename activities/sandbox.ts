import { Context, asyncLocalStorage } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { z } from 'zod';
import { permissionsSchema } from '../domain/tool.ts';
import { SandboxCancelledError, type SandboxBackend, type SandboxJob, type SandboxResult } from '../services/sandbox/types.ts';

/**
 * Temporal activities over a sandbox. A job that fails or breaks a limit is a normal
 * result (the forge workflow repairs on it); only infrastructure trouble throws, so
 * Temporal retries it. Long jobs heartbeat; a cancelled activity kills its container.
 */
export const sandboxExecInputSchema = z.object({
  command: z.array(z.string()).min(1),
  timeoutMs: z.number().int().positive().optional(),
  files: z.record(z.string(), z.string()).optional(),
  env: z.record(z.string(), z.string()).optional(),
});
export type SandboxExecInput = z.input<typeof sandboxExecInputSchema>;

export const sandboxRunToolInputSchema = z.object({
  files: z.record(z.string(), z.string()),
  entry: z.string().min(1),
  input: z.unknown(),
  permissions: permissionsSchema,
  env: z.record(z.string(), z.string()).default({}),
  timeoutMs: z.number().int().positive().optional(),
});
export type SandboxRunToolInput = z.input<typeof sandboxRunToolInputSchema>;

const HEARTBEAT_EVERY_MS = 2_000;

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw ApplicationFailure.create({ type: 'INPUT_INVALID', message: `invalid ${what}: ${issues}`, nonRetryable: true });
}

/** The current activity's context, or undefined when called directly (tests, the CLI). */
const currentContext = (): Context | undefined => (asyncLocalStorage.getStore() ? Context.current() : undefined);

async function runAsActivity(sandbox: SandboxBackend, job: SandboxJob): Promise<SandboxResult> {
  const ctx = currentContext();
  const started = Date.now();
  const id = ctx ? `${ctx.info.workflowExecution?.workflowId ?? ctx.info.activityType}:${ctx.info.activityId}:${ctx.info.attempt}` : undefined;
  const beat = ctx ? setInterval(() => ctx.heartbeat({ elapsedMs: Date.now() - started }), HEARTBEAT_EVERY_MS) : undefined;
  try {
    return await sandbox.runJob({ ...job, ...(id ? { id: id.slice(0, 120) } : {}) }, { signal: ctx?.cancellationSignal });
  } catch (err) {
    if (err instanceof SandboxCancelledError) throw new CancelledFailure(err.message);
    throw err;
  } finally {
    clearInterval(beat);
  }
}

export function createSandboxActivities(sandbox: SandboxBackend) {
  return {
    /** Runs an argv in a fresh sandbox, e.g. ['node', '-e', 'console.log(1+1)'] → stdout "2\n". */
    async sandboxExec(raw: SandboxExecInput): Promise<SandboxResult> {
      const input = parse(sandboxExecInputSchema, raw, 'sandboxExec input');
      return runAsActivity(sandbox, {
        mode: 'exec',
        command: input.command,
        files: input.files ?? {},
        env: input.env,
        limits: input.timeoutMs ? { timeoutMs: input.timeoutMs } : undefined,
      });
    },

    /** Calls a bundled tool once with the approved permissions. */
    async sandboxRunTool(raw: SandboxRunToolInput): Promise<SandboxResult> {
      const input = parse(sandboxRunToolInputSchema, raw, 'sandboxRunTool input');
      return runAsActivity(sandbox, {
        mode: 'call',
        files: input.files,
        entry: input.entry,
        input: input.input,
        permissions: input.permissions,
        env: input.env,
        limits: input.timeoutMs ? { timeoutMs: input.timeoutMs } : undefined,
      });
    },
  };
}

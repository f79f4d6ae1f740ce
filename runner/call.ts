import { ForgeError } from '../domain/errors.ts';
import type { Permissions, SideEffect } from '../domain/tool.ts';
import { createToolContext } from './ctx.ts';
import type { LogEntry, RunnerError, RunnerResult } from './protocol.ts';
import { describeIssues, type LoadedTool, unknownFields } from './tool-module.ts';

/** One tool call: validate input, run with a restricted ctx, validate output. Never throws. */
export interface CallOptions {
  env: Record<string, string | undefined>;
  permissions?: Permissions;
  /** the approved side effect; without it the tool's own manifest declares it */
  sideEffect?: SideEffect;
  timeoutMs: number;
  fetchImpl?: typeof fetch;
  /** the egress proxy (a job on an egress network): ctx.fetch's transport goes through it */
  proxyUrl?: string;
}

/**
 * The transport under ctx.fetch. Loaded only for proxied jobs: undici is large, and a warm
 * runner booting into `idle` should not evaluate it for the jobs (most) that never need it.
 */
async function transport(opts: CallOptions): Promise<typeof fetch | undefined> {
  if (opts.fetchImpl || !opts.proxyUrl) return opts.fetchImpl;
  const { proxiedFetch } = await import('./proxy-fetch.ts');
  return proxiedFetch(opts.proxyUrl);
}

export function toRunnerError(err: unknown): RunnerError {
  if (err instanceof ForgeError) return { ...err.toJSON(), code: err.code, message: err.message };
  if (err instanceof Error) {
    // fetch() says only "fetch failed"; the cause (ENETUNREACH, EAI_AGAIN, ...) is what tells a person why.
    const cause =
      err.cause instanceof Error ? ` (${(err.cause as NodeJS.ErrnoException).code ?? err.cause.name}: ${err.cause.message})` : '';
    return { code: 'TOOL_THREW', message: err.message + cause, name: err.name, stack: err.stack?.split('\n').slice(0, 6).join('\n') };
  }
  return { code: 'TOOL_THREW', message: String(err) };
}

class TimeoutError extends ForgeError {
  constructor(ms: number) {
    super(`the tool did not finish within its ${ms} ms budget`, 'TIMEOUT', 'make the tool honour ctx.signal, or raise limits.timeoutMs', {
      timeoutMs: ms,
    });
  }
}

export async function callTool(tool: LoadedTool, input: unknown, opts: CallOptions): Promise<RunnerResult> {
  const started = performance.now();
  const logs: LogEntry[] = [];
  const done = (r: Omit<RunnerResult, 'durationMs' | 'logs'>): RunnerResult => ({
    ...r,
    durationMs: Math.round(performance.now() - started),
    logs,
  });
  const parsedInput = tool.input.safeParse(input);
  if (!parsedInput.success) {
    return done({
      ok: false,
      error: {
        code: 'INPUT_INVALID',
        message: `invalid input for ${tool.name}: ${[describeIssues(parsedInput.error), unknownFields(tool.input, input)].filter(Boolean).join('; ')}`,
      },
    });
  }
  const controller = new AbortController();
  // ctx checks the declared domains before any request reaches this transport (first layer).
  const ctx = createToolContext({
    permissions: opts.permissions ?? tool.permissions,
    sideEffect: opts.sideEffect ?? tool.sideEffect,
    env: opts.env,
    fetchImpl: await transport(opts),
    signal: controller.signal,
    logSink: (e) => logs.push(e),
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort(new TimeoutError(opts.timeoutMs));
      reject(new TimeoutError(opts.timeoutMs));
    }, opts.timeoutMs);
  });
  try {
    const output = await Promise.race([Promise.resolve(tool.run(parsedInput.data, ctx)), deadline]);
    const parsedOutput = tool.output.safeParse(output);
    if (!parsedOutput.success) {
      return done({
        ok: false,
        output,
        error: {
          code: 'OUTPUT_INVALID',
          message: `${tool.name} returned output that does not match its output schema: ${describeIssues(parsedOutput.error)}`,
        },
      });
    }
    return done({ ok: true, output: parsedOutput.data });
  } catch (err) {
    return done({ ok: false, error: toRunnerError(err) });
  } finally {
    clearTimeout(timer);
  }
}

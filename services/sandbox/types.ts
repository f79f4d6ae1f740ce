import { z } from 'zod';
import { ForgeError } from '../../domain/errors.ts';
import { type ApiSpec, apiSpecSchema, type Permissions, permissionsSchema, type SideEffect, sideEffectSchema } from '../../domain/tool.ts';
import { type DeclaredTests, declaredTestsSchema, proxyUrlSchema } from '../../runner/protocol.ts';
import type { ProxyDecision } from '../../runner/proxy.ts';

/** The sandbox's public shapes: what callers hand in, what they get back. */
export const sandboxLimitsSchema = z.object({
  /** wall clock for the job itself, from handing it to the runner until its result */
  timeoutMs: z
    .number()
    .int()
    .min(100)
    .max(15 * 60_000),
  memoryMb: z.number().int().min(32).max(8192),
  pids: z.number().int().min(16).max(4096),
  cpus: z.number().min(0.05).max(16),
  /** stdout + stderr; beyond it the container is killed and the output truncated */
  outputBytes: z
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024),
});
export type SandboxLimits = z.infer<typeof sandboxLimitsSchema>;

export const DEFAULT_LIMITS: SandboxLimits = Object.freeze({
  timeoutMs: 30_000,
  memoryMb: 128,
  pids: 64,
  cpus: 0.5,
  outputBytes: 1024 * 1024,
});

export const sandboxJobSchema = z
  .object({
    mode: z.enum(['call', 'test', 'exec', 'checks']),
    files: z.record(z.string(), z.string()).default({}),
    /** the file the runner loads (call: the tool module, test: the test module) */
    entry: z.string().optional(),
    /** exec mode: argv, e.g. ['node', '-e', 'console.log(1+1)'] */
    command: z.array(z.string()).min(1).optional(),
    input: z.unknown().optional(),
    env: z.record(z.string(), z.string()).optional(),
    /** the approved permissions; without them the tool's own manifest declares them */
    permissions: permissionsSchema.optional(),
    /** the approved side effect; `read` limits ctx.fetch to GET, HEAD and OPTIONS (else the tool's own manifest says) */
    sideEffect: sideEffectSchema.optional(),
    limits: sandboxLimitsSchema.partial().optional(),
    /** a Docker network to attach instead of none (an egress network: see stages/egress.ts) */
    network: z.string().min(1).optional(),
    /** call mode: the egress proxy on `network` that ctx.fetch goes through */
    proxyUrl: proxyUrlSchema.optional(),
    /** a caller-chosen id for labels and logs (e.g. workflow id + step) */
    id: z.string().min(1).max(120).optional(),
    /** test mode: the tests the test file declares (stages/declared-tests.ts); the judge requires each to run */
    declaredTests: declaredTestsSchema.optional(),
    /** call mode without input: the runner picks one from the input schema (the live stage's one call) */
    chooseInput: z.boolean().optional(),
    /** call mode: a tool with hand-written (non-zod) schemas, whose output the judge cannot check (test fixtures) */
    allowOpaqueSchemas: z.boolean().optional(),
    /** checks mode (Forge's own checks, stages/checks.ts): the API the mock answers as; without it no fault checks run */
    apiSpec: apiSpecSchema.optional(),
    /** checks mode: the seed of the generated inputs */
    seed: z.number().int().min(0).max(0xffffffff).optional(),
  })
  .refine((job) => !job.proxyUrl || job.network, {
    // Without the egress network the container has no interface to reach the proxy on.
    message: 'proxyUrl needs the network the proxy is on',
    path: ['proxyUrl'],
  });
export type SandboxJob = {
  mode: 'call' | 'test' | 'exec' | 'checks';
  files: Record<string, string>;
  entry?: string;
  command?: string[];
  input?: unknown;
  env?: Record<string, string>;
  permissions?: Permissions;
  sideEffect?: SideEffect;
  limits?: Partial<SandboxLimits>;
  network?: string;
  proxyUrl?: string;
  id?: string;
  declaredTests?: DeclaredTests;
  chooseInput?: boolean;
  allowOpaqueSchemas?: boolean;
  apiSpec?: ApiSpec;
  seed?: number;
};

export type KilledBy = 'timeout' | 'memory' | 'output' | 'pids' | null;

export interface SandboxResult {
  ok: boolean;
  exitCode: number | null;
  /** call: the tool's validated output; test: the TestReport; checks: the ChecksReport (domain/forge-checks.ts) */
  output?: unknown;
  stdout: string;
  stderr: string;
  /** host wall clock for the whole job, including container start on the cold path */
  durationMs: number;
  /** durationMs minus the time the runner spent on the job: what the sandbox itself costs */
  overheadMs?: number;
  killedBy?: KilledBy;
  /** one sentence a person can act on when ok is false */
  reason?: string;
  /** the runner's structured error, when it produced one */
  error?: { code: string; message: string; [k: string]: unknown };
  logs?: Array<{ t: string; level: string; msg: string; fields?: Record<string, unknown> }>;
  /** the job's output was cut: the container's, or the judged process's logs (then logsTruncated too) */
  truncated?: boolean;
  /** the judged process wrote more than the result keeps (or more than its limit): logBytes says how much */
  logsTruncated?: boolean;
  logBytes?: { stdout: number; stderr: number };
  /** a call with chooseInput: the input it was made with */
  input?: unknown;
  /** a call with chooseInput: why no call was made */
  skipped?: string;
  /**
   * A call through the egress proxy: what the proxy allowed and refused. Complete for a failed
   * call; a successful one does not wait for the proxy's last log lines, so some may be missing.
   */
  egress?: ProxyDecision[];
  /** whether a pre-started pool container served the job */
  warm?: boolean;
  containerId?: string;
}

export interface RunOptions {
  /** aborting kills the container (Temporal activity cancellation) */
  signal?: AbortSignal;
}

export interface SandboxBackend {
  runJob(job: SandboxJob, opts?: RunOptions): Promise<SandboxResult>;
}

export function resolveLimits(partial?: Partial<SandboxLimits>): SandboxLimits {
  return sandboxLimitsSchema.parse({ ...DEFAULT_LIMITS, ...partial });
}

export class SandboxCancelledError extends ForgeError {
  constructor(jobId: string) {
    super(`sandbox job ${jobId} was cancelled; its container was killed`, 'SANDBOX_CANCELLED', undefined, { jobId });
  }
}

export class SandboxStartError extends ForgeError {
  constructor(jobId: string, image: string, reason: string) {
    super(
      `could not start a sandbox container for job ${jobId} from ${image}: ${reason}`,
      'SANDBOX_START_FAILED',
      'check dockerd (docker info) and that the image exists (forge provisions it with ensureSandboxImage)',
      { jobId, image },
    );
  }
}

export class SandboxClosedError extends ForgeError {
  constructor() {
    super('the sandbox was closed; no new jobs are accepted', 'SANDBOX_CLOSED', 'create a new sandbox (createSandbox) for further jobs');
  }
}

import fs from 'node:fs/promises';
import path from 'node:path';
import { asyncLocalStorage, Context } from '@temporalio/activity';
import { z } from 'zod';
import type { CaseRun } from '../domain/improve.ts';
import { permissionsSchema, toolManifestSchema } from '../domain/tool.ts';
import type { VerifyReport } from '../domain/verification.ts';
import type { KillSwitch } from '../services/control/kill-switch.ts';
import { createRegisteredToolRunner, type RegisteredToolDeps } from '../services/sandbox/run-registered.ts';
import { type LiveOptions, verifyTool, warmStaticChecker } from '../services/sandbox/stages/index.ts';
import type { SandboxBackend, SandboxJob, SandboxResult } from '../services/sandbox/types.ts';
import { adapted, parseActivityInput } from './failures.ts';
import { guard } from './guard.ts';

/**
 * Temporal activities over the sandbox. A job that fails or breaks a limit is a normal result
 * (the forge workflow repairs on it); only infrastructure trouble throws, so Temporal retries it.
 * Long jobs heartbeat; a cancelled activity kills its container.
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

const verifyInputSchema = z.object({
  files: z.record(z.string(), z.string()),
  manifestName: z.string().optional(),
  /** false: no live stage (`forge sandbox verify --no-live`); else the worker's live stage, when it is safe */
  live: z.boolean().optional(),
  /** the live call's input (`--live-input`) */
  liveInput: z.unknown().optional(),
});
const runRegisteredInputSchema = z.object({
  name: z.string().min(1),
  version: z.number().int().positive(),
  input: z.unknown(),
  timeoutMs: z.number().int().positive().optional(),
});

const runCasesInputSchema = z.object({
  /** a registered version, or a candidate's source run under that version's manifest */
  name: z.string().min(1),
  version: z.number().int().positive(),
  candidateSource: z.string().min(1).optional(),
  inputs: z.array(z.unknown()).max(100),
  timeoutMs: z.number().int().positive().optional(),
});

const HEARTBEAT_EVERY_MS = 2_000;

/** What the regression gate needs of a call: the verdict, the output or error, and the tool's own time. */
function caseRun(r: SandboxResult): CaseRun {
  return {
    ok: r.ok,
    ...(r.ok ? { output: r.output } : { error: r.reason ?? r.error?.message ?? `exit ${r.exitCode}` }),
    durationMs: Math.max(0, Math.round(r.durationMs - (r.overheadMs ?? 0))),
  };
}

/** The current activity's context, or undefined when called directly (tests, the CLI). */
const currentContext = (): Context | undefined => (asyncLocalStorage.getStore() ? Context.current() : undefined);

async function runAsActivity(sandbox: SandboxBackend, job: SandboxJob): Promise<SandboxResult> {
  const ctx = currentContext();
  const started = Date.now();
  const id = ctx
    ? `${ctx.info.workflowExecution?.workflowId ?? ctx.info.activityType}:${ctx.info.activityId}:${ctx.info.attempt}`
    : undefined;
  const beat = ctx ? setInterval(() => ctx.heartbeat({ elapsedMs: Date.now() - started }), HEARTBEAT_EVERY_MS) : undefined;
  try {
    return await sandbox.runJob({ ...job, ...(id ? { id: id.slice(0, 120) } : {}) }, { signal: ctx?.cancellationSignal });
  } finally {
    clearInterval(beat);
  }
}

export function createSandboxActivities(sandbox: SandboxBackend) {
  return adapted({
    /** Runs an argv in a fresh sandbox, e.g. ['node', '-e', 'console.log(1+1)'] → stdout "2\n". */
    async sandboxExec(raw: SandboxExecInput): Promise<SandboxResult> {
      const input = parseActivityInput(sandboxExecInputSchema, raw, 'sandboxExec input');
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
      const input = parseActivityInput(sandboxRunToolInputSchema, raw, 'sandboxRunTool input');
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
  });
}

/**
 * The three verification stages as one activity. A report is a normal result (the forge workflow
 * repairs on it); but a run that overlapped a freeze is refused afterwards, so a sandbox killed by
 * `forge freeze` never reads as a broken tool.
 */
export function createVerifyActivities(deps: { sandbox: SandboxBackend; live?: LiveOptions; killSwitch?: KillSwitch }) {
  // The static stage's type-checker thread parses the standard library and zod's typings now, not
  // during the first forge's verification (best effort: a failure shows at that verification).
  warmStaticChecker().catch(() => {});
  return adapted({
    async sandboxVerify(raw: z.input<typeof verifyInputSchema>): Promise<VerifyReport> {
      const input = parseActivityInput(verifyInputSchema, raw, 'sandboxVerify input');
      await guard(deps.killSwitch, 'sandbox verification');
      const report = await verifyTool(
        {
          files: input.files,
          manifestName: input.manifestName,
          live: input.live === false ? false : (deps.live ?? false),
          ...(input.liveInput !== undefined ? { liveInput: input.liveInput } : {}),
        },
        deps.sandbox,
      );
      await guard(deps.killSwitch, 'sandbox verification');
      return report;
    },
  });
}

/** A registered tool version, run once with only what its manifest declares (services/sandbox/run-registered.ts). */
export function createRegisteredToolActivities(deps: RegisteredToolDeps & { killSwitch?: KillSwitch }) {
  const runner = createRegisteredToolRunner(deps);
  return adapted({
    async sandboxRunRegisteredTool(raw: z.input<typeof runRegisteredInputSchema>): Promise<SandboxResult> {
      const input = parseActivityInput(runRegisteredInputSchema, raw, 'sandboxRunRegisteredTool input');
      await guard(deps.killSwitch, `running ${input.name}`);
      const result = await runner.run(input, { signal: currentContext()?.cancellationSignal });
      // A call cut short by `forge freeze` is not the tool's failure: refuse it so it is retried after thaw.
      await guard(deps.killSwitch, `running ${input.name}`);
      return result;
    },

    /** The regression gate's calls: each input against a registered version, or against a candidate under its manifest. */
    async sandboxRunCases(raw: z.input<typeof runCasesInputSchema>): Promise<CaseRun[]> {
      const input = parseActivityInput(runCasesInputSchema, raw, 'sandboxRunCases input');
      await guard(deps.killSwitch, `running cases of ${input.name}`);
      const ctx = currentContext();
      const beat = ctx ? setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS) : undefined;
      try {
        const signal = ctx?.cancellationSignal;
        let results: SandboxResult[];
        if (input.candidateSource) {
          const manifest = toolManifestSchema.parse(
            JSON.parse(await fs.readFile(path.join(deps.toolsDir, input.name, `v${input.version}`, 'manifest.json'), 'utf8')),
          );
          results = await runner.runCandidate(
            { manifest, source: input.candidateSource, inputs: input.inputs, timeoutMs: input.timeoutMs },
            { signal },
          );
        } else {
          results = [];
          for (const one of input.inputs)
            results.push(
              await runner.run({ name: input.name, version: input.version, input: one, timeoutMs: input.timeoutMs }, { signal }),
            );
        }
        await guard(deps.killSwitch, `running cases of ${input.name}`);
        return results.map(caseRun);
      } finally {
        clearInterval(beat);
      }
    },
  });
}

import { readFile } from 'node:fs/promises';
import type { ForgeConfig } from '../domain/config.ts';
import type { VerifyReport } from '../domain/verification.ts';
import { dockerClient } from '../infra/docker.ts';
import { ensureSandboxImage } from '../infra/sandbox-image.ts';
import { bundleToolModule } from '../services/sandbox/bundle.ts';
import { createSandbox, type SandboxResult } from '../services/sandbox/index.ts';
import { readManifestSource, reapEgress, verifyTool } from '../services/sandbox/stages/index.ts';

export type { StageResult, VerifyReport } from '../domain/verification.ts';
export type { SandboxResult };

// A tool folder tried by hand, in-process: no workflow, no catalog, no kill switch (nothing is
// registered or called for real), the same hardened container and verification stages as Forge's.

export interface ExecAsk {
  /** the tool's module, e.g. tool.ts; its own imports resolve from its folder */
  file: string;
  input: unknown;
  /** the variables named with --env: only those the tool's manifest declares leave this process */
  env: Record<string, string>;
  timeoutMs?: number;
}

export interface ExecResult extends SandboxResult {
  /** --env variables never sent to the container, and why */
  envWithheld?: { names: string[]; reason: string };
}

export interface DeclaredEnv {
  /** what may be sent: the named variables the manifest declares */
  env: Record<string, string>;
  withheld?: { names: string[]; reason: string };
}

/**
 * Keeps of the named variables only those the tool's manifest declares, deciding on the host from
 * the source alone (parsed, never run): an undeclared value must not reach the container at all,
 * where the tool could read it from the runner's memory before the runner filters it. When the
 * manifest cannot be read that way, nothing is sent.
 */
export function declaredEnvOnly(source: string, env: Record<string, string>): DeclaredEnv {
  const names = Object.keys(env);
  if (names.length === 0) return { env: {} };
  const { manifest, problems } = readManifestSource(source);
  // A computed permissions.env reads as empty: say it could not be read, rather than "declared: none".
  const envProblem = problems.find((p) => /manifest\.permissions(\.env| )/.test(p));
  if (!manifest || envProblem) {
    const why = envProblem ?? problems[0] ?? 'no literal `export const manifest = {...}`';
    return { env: {}, withheld: { names, reason: `the manifest's permissions.env could not be read without running the tool (${why})` } };
  }
  const declared = new Set(manifest.env);
  const withheld = names.filter((n) => !declared.has(n));
  return {
    env: Object.fromEntries(Object.entries(env).filter(([n]) => declared.has(n))),
    ...(withheld.length
      ? {
          withheld: {
            names: withheld,
            reason: `not in the manifest's permissions.env (declared: ${manifest.env.join(', ') || 'none'})`,
          },
        }
      : {}),
  };
}

/** Bundles a tool module and runs it once in a fresh sandbox container (no warm pool). */
export async function execToolFile(cfg: ForgeConfig, ask: ExecAsk): Promise<ExecResult> {
  const { env, withheld } = declaredEnvOnly(await readFile(ask.file, 'utf8'), ask.env);
  const code = await bundleToolModule(ask.file);
  const docker = dockerClient(cfg);
  await ensureSandboxImage(docker, { tag: cfg.FORGE_SANDBOX_IMAGE });
  const sandbox = createSandbox({ docker, image: cfg.FORGE_SANDBOX_IMAGE, poolSize: 0 });
  try {
    const result = await sandbox.runJob({
      mode: 'call',
      files: { 'tool.mjs': code },
      entry: 'tool.mjs',
      input: ask.input,
      env,
      limits: ask.timeoutMs ? { timeoutMs: ask.timeoutMs } : undefined,
    });
    return withheld ? { ...result, envWithheld: withheld } : result;
  } finally {
    await sandbox.close();
  }
}

export interface VerifyAsk {
  /** a folder with tool.ts, tool.test.ts and optionally api-spec.json */
  dir: string;
  /** the name the tool would be registered under; its manifest must match */
  name?: string;
  /** whether to run the live stage (a real call through the egress proxy) */
  live: boolean;
  /** real values for the env variables the manifest declares, for the live call only */
  env: Record<string, string>;
  liveInput?: unknown;
}

/** Runs the verification stages (static, mock, live) on a tool folder, as a forge does before registering. */
export async function verifyToolFolder(cfg: ForgeConfig, ask: VerifyAsk): Promise<VerifyReport> {
  const docker = dockerClient(cfg);
  await ensureSandboxImage(docker, { tag: cfg.FORGE_SANDBOX_IMAGE });
  await reapEgress(docker);
  const sandbox = createSandbox({ docker, image: cfg.FORGE_SANDBOX_IMAGE, poolSize: 0 });
  try {
    return await verifyTool(
      {
        dir: ask.dir,
        ...(ask.name ? { manifestName: ask.name } : {}),
        live: ask.live ? { docker, image: cfg.FORGE_SANDBOX_IMAGE } : false,
        secrets: ask.env,
        ...(ask.liveInput !== undefined ? { liveInput: ask.liveInput } : {}),
      },
      sandbox,
    );
  } finally {
    await sandbox.close();
  }
}

import type { ForgeConfig } from '../domain/config.ts';
import type { VerifyReport } from '../domain/verification.ts';
import { dockerClient } from '../infra/docker.ts';
import { ensureSandboxImage } from '../infra/sandbox-image.ts';
import { bundleToolModule } from '../services/sandbox/bundle.ts';
import { createSandbox, type SandboxResult } from '../services/sandbox/index.ts';
import { reapEgress, verifyTool } from '../services/sandbox/stages/index.ts';

export type { StageResult, VerifyReport } from '../domain/verification.ts';
export type { SandboxResult };

// A tool folder tried by hand, in-process: no workflow, no catalog, no kill switch (nothing is
// registered or called for real), the same hardened container and verification stages as Forge's.

export interface ExecAsk {
  /** the tool's module, e.g. tool.ts; its own imports resolve from its folder */
  file: string;
  input: unknown;
  /** the variables passed to the tool (the runner keeps only those its manifest declares) */
  env: Record<string, string>;
  timeoutMs?: number;
}

/** Bundles a tool module and runs it once in a fresh sandbox container (no warm pool). */
export async function execToolFile(cfg: ForgeConfig, ask: ExecAsk): Promise<SandboxResult> {
  const code = await bundleToolModule(ask.file);
  const docker = dockerClient(cfg);
  await ensureSandboxImage(docker, { tag: cfg.FORGE_SANDBOX_IMAGE });
  const sandbox = createSandbox({ docker, image: cfg.FORGE_SANDBOX_IMAGE, poolSize: 0 });
  try {
    return await sandbox.runJob({
      mode: 'call',
      files: { 'tool.mjs': code },
      entry: 'tool.mjs',
      input: ask.input,
      env: ask.env,
      limits: ask.timeoutMs ? { timeoutMs: ask.timeoutMs } : undefined,
    });
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

import fs from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { toolManifestSchema } from '../../domain/tool.ts';
import type { KillSwitch } from '../kill-switch.ts';
import { bundleToolModule } from './bundle.ts';
import type { SandboxBackend, SandboxResult } from './types.ts';

/**
 * Runs a registered tool version once in a fresh sandbox. The tool gets only what its manifest
 * declares: ctx.fetch limited to its domains, and of this worker's environment (where secrets
 * live, never in code) only its declared variables.
 */
export function createRegisteredToolActivities(deps: { sandbox: SandboxBackend; toolsDir: string; killSwitch?: KillSwitch; env?: NodeJS.ProcessEnv }) {
  const env = deps.env ?? process.env;
  return {
    async sandboxRunRegisteredTool(input: { name: string; version: number; input: unknown; timeoutMs?: number }): Promise<SandboxResult> {
      await deps.killSwitch?.guard(`running ${input.name}`);
      const dir = path.join(deps.toolsDir, input.name, `v${input.version}`);
      const manifestText = await fs.readFile(path.join(dir, 'manifest.json'), 'utf8').catch(() => {
        throw ApplicationFailure.nonRetryable(`${input.name} v${input.version} is not on disk at ${dir}`, 'ToolMissing');
      });
      const manifest = toolManifestSchema.parse(JSON.parse(manifestText));
      const bundled = await bundleToolModule(path.join(dir, 'tool.ts'));
      const declaredEnv = Object.fromEntries(
        manifest.permissions.env.flatMap((k) => (env[k] !== undefined ? [[k, env[k] as string]] : [])),
      );
      const result = await deps.sandbox.runJob({
        mode: 'call',
        files: { 'tool.mjs': bundled },
        entry: 'tool.mjs',
        input: input.input,
        permissions: manifest.permissions,
        env: declaredEnv,
        limits: input.timeoutMs ? { timeoutMs: input.timeoutMs } : undefined,
      });
      // A call cut short by `forge freeze` is not the tool's failure: refuse it so it is retried after thaw.
      await deps.killSwitch?.guard(`running ${input.name}`);
      return result;
    },
  };
}

import type { VerifyReport } from '../domain/verification.ts';
import type { KillSwitch } from '../services/control/kill-switch.ts';
import { verifyTool, type LiveOptions } from '../services/sandbox/stages/index.ts';
import type { SandboxBackend } from '../services/sandbox/types.ts';

/**
 * The three verification stages as one activity on the sandbox queue. A report is a normal result
 * (the forge workflow repairs on it); but a run that overlapped a freeze is refused afterwards, so
 * a sandbox killed by `forge freeze` never reads as a broken tool.
 */
export function createVerifyActivities(deps: { sandbox: SandboxBackend; live?: LiveOptions; killSwitch?: KillSwitch }) {
  return {
    async sandboxVerify(input: { files: Record<string, string>; manifestName?: string }): Promise<VerifyReport> {
      await deps.killSwitch?.guard('sandbox verification');
      const report = await verifyTool({ files: input.files, manifestName: input.manifestName, live: deps.live ?? false }, deps.sandbox);
      await deps.killSwitch?.guard('sandbox verification');
      return report;
    },
  };
}

import type { VerifyReport } from '../domain/verification.ts';
import { type VerifyFolderRequest, verifyFolderRequestSchema } from '../domain/verify-folder.ts';
import { sandboxJobs } from './activities.ts';
import { parseWorkflowInput } from './common.ts';

/**
 * `forge sandbox verify <dir>` on the running Forge: the folder's files verified by the sandbox
 * worker, whose static checker and warm pool are up (the CLI's own process would start both cold).
 * One activity, retried once: a person waits on the other end, and the CLI can verify in its own
 * process instead. Nothing is registered or recorded; the report is the verification's, as is.
 */
export async function verifyFolderWorkflow(raw: VerifyFolderRequest): Promise<VerifyReport> {
  const req = parseWorkflowInput(verifyFolderRequestSchema, raw, 'verify request', 'InvalidVerifyRequest');
  const { sandboxVerify } = sandboxJobs(req.sandboxQueue, 2);
  return sandboxVerify({
    files: req.files as Record<string, string>,
    ...(req.manifestName ? { manifestName: req.manifestName } : {}),
    live: req.live,
    ...(req.liveInput !== undefined ? { liveInput: req.liveInput } : {}),
  });
}

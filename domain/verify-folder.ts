import { z } from 'zod';

/**
 * `forge sandbox verify <dir>` on the running Forge: the folder's files, read by the CLI, verified
 * by the sandbox worker (workflows/verify.ts → the sandboxVerify activity), whose type-checker and
 * warm pool are already up. Secrets never come this way (they would be written into the workflow's
 * history): a verification that needs one runs in the CLI's own process.
 */
export const VERIFY_FILES = ['tool.ts', 'tool.test.ts', 'api-spec.json'] as const;

export const verifyFolderRequestSchema = z.object({
  sandboxQueue: z.string().min(1),
  /** the folder's verification files that exist, by name; at least one */
  files: z
    .partialRecord(z.enum(VERIFY_FILES), z.string())
    .refine((files) => Object.keys(files).length > 0, { message: `at least one of ${VERIFY_FILES.join(', ')}` }),
  /** the name the tool would be registered under; its manifest must match */
  manifestName: z.string().min(1).optional(),
  /** false: no live stage (--no-live) */
  live: z.boolean(),
  /** the live call's input (--live-input) */
  liveInput: z.unknown().optional(),
});
export type VerifyFolderRequest = z.input<typeof verifyFolderRequestSchema>;
